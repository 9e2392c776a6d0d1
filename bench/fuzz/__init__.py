"""``python -m bench.fuzz``: generated inputs against the hand-written parsers (see
``__main__``); one module a target, ``engine`` to run and judge them, ``pieces`` for the MP3
structures and real files the audio targets are built from."""
