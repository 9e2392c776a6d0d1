# The build platform of every layer, in one place: included by layers/*/Makefile.
# pip cross-installs wheels for the Lambda runtime, whatever machine and Python run `sam build`
# (offline, no Docker). It must match the functions' architecture, which template.yaml names
# in one place (Globals: Function: Architectures).
#
# arm64 (Graviton). PyAV publishes manylinux_2_28 wheels only, the other packages
# manylinux2014 ones, so pip is given both. For x86_64: manylinux_2_28_x86_64 and
# manylinux2014_x86_64 here, `x86_64` in the template's Globals, and the x86 build of the
# Lambda Web Adapter layer (LambdaAdapterLayerX86) on the two device functions.
LAMBDA_PIP_PLATFORM := --python-version 3.13 --implementation cp --only-binary=:all: \
	--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
