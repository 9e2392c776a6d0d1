"""The Catalog in one DynamoDB table (``pk``/``sk`` strings, on-demand).

Audio records live in one item collection (``pk = "AUDIO"``, ``sk = filename``), so listing
is one paginated Query in filename order, never a scan of the bucket or one read per file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from smart_stream.adapters.aws.dynamo_items import (
    AUDIO_PK,
    CURSOR_PK,
    QUEUE_PK,
    SCHEMA_KEY,
    VALUE_PK,
    conditional,
    guard,
    queue_item,
    status_filter,
)
from smart_stream.adapters.catalog_rows import (
    SCHEMA_VERSION,
    TOMBSTONE,
    QueueParser,
    normalize_sequencer,
    search_text,
)
from smart_stream.changes import AudioChanged, ChangeFeed, QueueChanged
from smart_stream.domain.records import AudioRecord, AudioStatus, QueueRecord, StreamCursor
from smart_stream.ports import Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoCatalog:
    """Made without a request: a cold start reads nothing before its first request needs
    it, and never writes. ``migrate`` is called only where writes are expected anyway.

    Writes made through this adapter are told to ``changes`` (the device caches of this
    process forget what changed; the table's own stream tells every other function)."""

    def __init__(
        self, table: str, client: DynamoDBClient, changes: ChangeFeed | None = None
    ) -> None:
        self.table = table
        self.client = client
        self.changes = changes or ChangeFeed()
        self._parse_queue = QueueParser()

    def migrate(self) -> None:
        item = guard(lambda: self.client.get_item(TableName=self.table, Key=SCHEMA_KEY)).get("Item")
        version = int(item["version"]["N"]) if item else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"Table {self.table} has schema {version}, newer than this code's.")
        # Versions 1 to 4 need no data changes (2 adds the optional "sequencer" attribute,
        # 3 the QUEUE and CURSOR item collections, 4 the VALUE one);
        # later versions add their steps here.
        if version < SCHEMA_VERSION:
            guard(
                lambda: self.client.put_item(
                    TableName=self.table,
                    Item={**SCHEMA_KEY, "version": {"N": str(SCHEMA_VERSION)}},
                )
            )

    def schema_version(self) -> int:
        """0 until ``migrate`` first ran."""
        item = guard(lambda: self.client.get_item(TableName=self.table, Key=SCHEMA_KEY)).get("Item")
        return int(item["version"]["N"]) if item else 0

    def get_audio(self, filename: str) -> AudioRecord | None:
        response = guard(
            lambda: self.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": AUDIO_PK}, "sk": {"S": filename}},
                ProjectionExpression="#record",
                ExpressionAttributeNames={"#record": "record"},
            )
        )
        item = response.get("Item")
        if item is None or "record" not in item:  # absent, or a tombstone
            return None
        return AudioRecord.model_validate_json(item["record"]["S"])

    def put_audio(
        self,
        record: AudioRecord,
        *,
        sequencer: str | None = None,
        keep_version: bool = False,
        if_source: str | None = None,
    ) -> bool:
        values = {
            ":status": {"S": record.status.value},
            ":search": {"S": search_text(record)},
            ":record": {"S": record.model_dump_json()},
            ":etag": {"S": record.etag},
        }
        update = "SET #status = :status, search_text = :search, #record = :record, etag = :etag"
        # The upload a converting record waits for, where a condition can read it.
        if record.source_key:
            update += ", source_key = :source"
            values[":source"] = {"S": record.source_key}
        else:
            update += " REMOVE source_key"
        written = self._update(
            record.filename, update, values, sequencer, keep_version, if_source=if_source
        )
        if written:
            self.changes.publish(AudioChanged(record.filename))
        return written

    def delete_audio(self, filename: str, *, sequencer: str | None = None) -> bool:
        if sequencer is None:
            response = guard(
                lambda: self.client.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": AUDIO_PK}, "sk": {"S": filename}},
                    ReturnValues="ALL_OLD",
                )
            )
            removed = "record" in response.get("Attributes", {})
        else:
            existed = self.get_audio(filename) is not None
            # The tombstone is written whether or not a record was there: an older event
            # arriving late must not bring the file back.
            tombstone = self._update(
                filename,
                "SET #status = :status, search_text = :search REMOVE #record",
                {":status": {"S": TOMBSTONE}, ":search": {"S": ""}},
                sequencer,
            )
            removed = tombstone and existed
        if removed:
            self.changes.publish(AudioChanged(filename))
        return removed

    def _update(
        self,
        filename: str,
        update: str,
        values: dict[str, Any],
        sequencer: str | None,
        keep_version: bool = False,
        *,
        if_source: str | None = None,
    ) -> bool:
        """One UpdateItem; with a sequencer, only if it is newer than the one stored (a write
        that is not an event's keeps the last event's sequencer); with ``if_source``, only
        over a record that still waits for that upload."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": AUDIO_PK}, "sk": {"S": filename}},
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#status": "status", "#record": "record"},
            "ExpressionAttributeValues": dict(values),
        }
        if sequencer is not None:
            set_part, _, remove_part = update.partition(" REMOVE ")
            kwargs["UpdateExpression"] = f"{set_part}, sequencer = :seq" + (
                f" REMOVE {remove_part}" if remove_part else ""
            )
            condition = "(attribute_not_exists(sequencer) OR sequencer < :seq)"
            kwargs["ExpressionAttributeValues"][":seq"] = {"S": normalize_sequencer(sequencer)}
            if keep_version:
                condition += (
                    " AND (attribute_not_exists(etag) OR etag <> :etag"
                    " OR #status IN (:pending, :deleted))"
                )
                kwargs["ExpressionAttributeValues"][":pending"] = {"S": "pending"}
                kwargs["ExpressionAttributeValues"][":deleted"] = {"S": TOMBSTONE}
            kwargs["ConditionExpression"] = condition
        if if_source is not None:
            condition = "attribute_exists(#record) AND source_key = :expected_source"
            kwargs["ExpressionAttributeValues"][":expected_source"] = {"S": if_source}
            if "ConditionExpression" in kwargs:
                condition = f"({kwargs['ConditionExpression']}) AND {condition}"
            kwargs["ConditionExpression"] = condition
        written = conditional(lambda: self.client.update_item(**kwargs))
        if not written and sequencer is not None and if_source is None:
            return self._landed(filename, values, sequencer)
        return written

    def _landed(self, filename: str, values: dict[str, Any], sequencer: str) -> bool:
        """Whether the item holds this very write: one carried out whose answer was lost
        (a time-out), so that botocore's retry was refused, its sequencer being no longer
        newer than the one stored (its own)."""
        item = guard(
            lambda: self.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": AUDIO_PK}, "sk": {"S": filename}},
                ConsistentRead=True,
            )
        ).get("Item", {})
        return (
            item.get("sequencer") == {"S": normalize_sequencer(sequencer)}
            and item.get("status") == values[":status"]
            and item.get("record") == values.get(":record")
        )

    def _query(self, **kwargs: Any) -> Iterator[tuple[AudioRecord, dict[str, Any]]]:
        """Every matching record in sort-key order, page after page."""
        while True:
            response = guard(lambda: self.client.query(TableName=self.table, **kwargs))
            for item in response.get("Items", []):
                yield AudioRecord.model_validate_json(item["record"]["S"]), item
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def list_audio(
        self, *, limit: int, after: str | None, statuses: Collection[AudioStatus]
    ) -> Page:
        status_expr, values = status_filter(statuses)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk" + (" AND sk > :after" if after else ""),
            "FilterExpression": status_expr,
            "ExpressionAttributeNames": {"#status": "status", "#record": "record"},
            "ExpressionAttributeValues": {
                ":pk": {"S": AUDIO_PK},
                **values,
                **({":after": {"S": after}} if after else {}),
            },
            "ProjectionExpression": "#record",
            # One more than a page tells whether another page follows.
            "Limit": limit + 1,
        }
        records: list[AudioRecord] = []
        for record, _ in self._query(**kwargs):
            records.append(record)
            if len(records) > limit:
                return Page(records[:limit], records[limit - 1].filename)
        return Page(records, None)

    def search_audio(
        self, needle: str, *, statuses: Collection[AudioStatus]
    ) -> Iterator[AudioRecord]:
        status_expr, values = status_filter(statuses)
        for record, _ in self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression=f"contains(search_text, :needle) AND {status_expr}",
            ExpressionAttributeNames={"#status": "status", "#record": "record"},
            ExpressionAttributeValues={":pk": {"S": AUDIO_PK}, ":needle": {"S": needle}, **values},
            ProjectionExpression="#record",
        ):
            yield record

    def get_queue(self, name: str) -> QueueRecord | None:
        item = guard(
            lambda: self.client.get_item(
                TableName=self.table, Key={"pk": {"S": QUEUE_PK}, "sk": {"S": name}}
            )
        ).get("Item")
        return None if item is None else self._parse_queue(item["record"]["S"])

    def put_queue(self, record: QueueRecord, *, expected_version: int | None) -> bool:
        item = queue_item(record)
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        written = conditional(
            lambda: self.client.put_item(TableName=self.table, Item=item, **condition)
        )
        if written:
            self.changes.publish(QueueChanged(record.name, expected_version is not None, True))
        return written

    def delete_queue(self, name: str) -> bool:
        response = guard(
            lambda: self.client.delete_item(
                TableName=self.table,
                Key={"pk": {"S": QUEUE_PK}, "sk": {"S": name}},
                ReturnValues="ALL_OLD",
            )
        )
        if "Attributes" not in response:
            return False
        self.changes.publish(QueueChanged(name, True, False))
        return True

    def list_queues(self) -> list[QueueRecord]:
        queues = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": QUEUE_PK}},
        }
        while True:
            response = guard(lambda: self.client.query(**kwargs))
            queues += [QueueRecord.model_validate_json(i["record"]["S"]) for i in response["Items"]]
            if not response.get("LastEvaluatedKey"):
                return queues
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_cursor(self, key: str) -> StreamCursor | None:
        item = guard(
            lambda: self.client.get_item(
                TableName=self.table, Key={"pk": {"S": CURSOR_PK}, "sk": {"S": key}}
            )
        ).get("Item")
        return None if item is None else StreamCursor.model_validate_json(item["cursor"]["S"])

    def put_cursor(self, key: str, cursor: StreamCursor) -> None:
        item = {
            "pk": {"S": CURSOR_PK},
            "sk": {"S": key},
            "cursor": {"S": cursor.model_dump_json()},
        }
        guard(lambda: self.client.put_item(TableName=self.table, Item=item))

    def get_value(self, key: str) -> str | None:
        item = guard(
            lambda: self.client.get_item(
                TableName=self.table, Key={"pk": {"S": VALUE_PK}, "sk": {"S": key}}
            )
        ).get("Item")
        return None if item is None else str(item["value"]["S"])

    def put_value(self, key: str, value: str) -> None:
        item = {"pk": {"S": VALUE_PK}, "sk": {"S": key}, "value": {"S": value}}
        guard(lambda: self.client.put_item(TableName=self.table, Item=item))

    def delete_value(self, key: str) -> None:
        guard(
            lambda: self.client.delete_item(
                TableName=self.table, Key={"pk": {"S": VALUE_PK}, "sk": {"S": key}}
            )
        )
