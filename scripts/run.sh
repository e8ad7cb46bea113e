#!/usr/bin/env bash
# run.sh: what `make run` does once infd is built: print where the server listens and a
# request to paste, then run infd in the foreground on the default model repository.
# The backend is auto: the GPU when CUDA support is built in and a device is present,
# else the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/infd}
port=${INFD_PORT:-8000}
url=http://127.0.0.1:$port
cat <<EOT
infd: serving models/ at $url (Ctrl-C stops it)
Score e-mails with spam_text (a spam probability and an action for each; README.md shows the answer):

curl -s -X POST $url/v2/models/spam_text/infer -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[3],"data":["Subject: You WON \$1,000,000!!!\\n\\nCLICK HERE to claim your FREE prize: just reply with your name, address and credit card number!","Cheap watches!! Order now at our web store","Hi George, the project meeting moved to 3pm tomorrow; the report draft is on the lab drive. Thanks, Maria"]}]}'

EOT
exec "$bin" --model-repository models --http-address 127.0.0.1 --http-port "$port"
