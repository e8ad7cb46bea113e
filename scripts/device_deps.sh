#!/usr/bin/env bash
# device_deps.sh: make device-deps: downloads what a bare GPU machine (the `device` tool's,
# which reaches no registry) needs beyond its CUDA toolkit and Python to build infd and run
# make test-gpu: the Debian packages the Makefile compiles and links against, as .deb files
# in .debs/, and the Python packages the end-to-end tests import that the machine lacks, as
# wheels in .whl/ (both git-ignored). scripts/device_build.sh uses them there.
set -euo pipefail
cd "$(dirname "$0")/.."
# headers and libraries (and protoc-c, onnx.proto, the ONNX node tests); the -dev packages
# bring the headers and libfoo.so links, the others the shared libraries they point at
debs=(libprotobuf-c1 libprotobuf-c-dev protobuf-c-compiler libprotoc32 libprotobuf32
      libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0 libgomp1
      libjansson4 libjansson-dev libmicrohttpd12 libmicrohttpd-dev libsystemd0 libsystemd-dev
      libcmocka0 libcmocka-dev libonnx-dev libonnx-testdata)
mkdir -p .debs
echo "device-deps: downloading ${#debs[@]} Debian packages into .debs/"
(cd .debs && apt-get download "${debs[@]}")
# tritonclient[http] and what it needs that the device image does not have (its package
# list is in the device tool's notes), for Python 3.12 on x86-64
wheels=(tritonclient==2.59.0 python-rapidjson geventhttpclient gevent greenlet zope.event
        zope.interface brotli)
mkdir -p .whl
echo "device-deps: downloading ${#wheels[@]} wheels into .whl/"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "${wheels[@]}"
du -sh .debs .whl
