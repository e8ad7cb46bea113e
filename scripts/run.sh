#!/usr/bin/env bash
# run.sh: what `make run` does once infd is built: print where the server listens and a
# request to paste, then run infd in the foreground on the default model repository.
# The backend is auto: the GPU when CUDA support is built in and a device is present,
# else the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/infd}
port=${INFD_PORT:-8000}
# The first TEST-split row of Spambase (a spam e-mail), in the model's feature order.
row='0,0.64,0.64,0,0.32,0,0,0,0,0,0,0.64,0,0,0,0.32,0,1.29,1.93,0,0.96,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0.778,0,0,3.756,61,278'
cat <<EOT
infd: serving models/ at http://127.0.0.1:$port (Ctrl-C stops it)
Score an e-mail's Spambase features with the spam model:

curl -s -X POST http://127.0.0.1:$port/v2/models/spam/infer -d '{"inputs":[{"name":"features","datatype":"FP32","shape":[1,57],"data":[$row]}]}'

EOT
exec "$bin" --model-repository models --http-address 127.0.0.1 --http-port "$port"
