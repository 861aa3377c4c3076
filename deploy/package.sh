#!/usr/bin/env bash
# Builds the Lambda packages and the default mapper, then prints the commands that upload and
# deploy them.
#
#   deploy/package.sh [--arch arm64|x86_64|all] [--out DIR]
#
# Each package (DIR/rds-forwarder-<arch>.zip) holds `bootstrap` and the embedded mapper
# precompiled for that architecture (rds-mapper-<hash>.cwasm), so a cold start compiles
# nothing. DIR/rds-mapper.wasm is the default mapper as a component, the starting point for a
# custom one. Needs cargo-lambda (PyPI, installed here if missing; it brings zig to cross-compile).
set -euo pipefail
cd "$(dirname "$0")/.."

arch=all
out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$arch" in
  all) archs="arm64 x86_64" ;;
  arm64|x86_64) archs="$arch" ;;
  *) echo "package.sh: --arch must be arm64, x86_64 or all" >&2; exit 2 ;;
esac

if ! command -v cargo-lambda >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check cargo-lambda
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

host=$(uname -m)
native() { case "$1:$host" in x86_64:x86_64|arm64:aarch64) return 0 ;; *) return 1 ;; esac; }
# The precompiler for another architecture than this machine's: a release build with every
# Cranelift backend. A native package precompiles with its own bootstrap instead.
cross_tool=""
for a in $archs; do
  if ! native "$a" && [ -z "$cross_tool" ]; then
    echo "== cross precompiler (host release build with --features cross-compile)"
    cargo build --release --locked -p rds-forwarder --bin rds-forwarder --features cross-compile --target-dir target/package-tool
    cross_tool=target/package-tool/release/rds-forwarder
  fi
done

for a in $archs; do
  case "$a" in
    arm64) triple=aarch64-unknown-linux-gnu; flag=--arm64 ;;
    x86_64) triple=x86_64-unknown-linux-gnu; flag=--x86-64 ;;
  esac
  # A native build needs no zig; cross builds use cargo-lambda's default (zig).
  compiler=""
  native "$a" && compiler="--compiler cargo"
  echo "== bootstrap for $a"
  cargo lambda build --release --locked --no-default-features --bin rds-forwarder $flag $compiler --lambda-dir "target/lambda/$a"
  dir="target/lambda/$a/rds-forwarder"
  tool="$dir/bootstrap"
  native "$a" || tool="$cross_tool"
  rm -f "$dir"/rds-mapper-*.cwasm
  # Named by the embedded mapper's hash: the name the host looks for beside its executable.
  "$tool" compile --target "$triple" --output-dir "$dir" >/dev/null
  name=$(cd "$dir" && ls rds-mapper-*.cwasm)
  zip="$out/rds-forwarder-$a.zip"
  rm -f "$zip"
  (cd "$dir" && python3 -m zipfile -c "$zip" bootstrap "$name")
  echo "   $zip: bootstrap + $name"
done

wasm=target/guest-build/wasm32-wasip2/guest/rds_mapper_component.wasm
cp "$wasm" "$out/rds-mapper.wasm"
sha=$(python3 -c "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())" "$out/rds-mapper.wasm")

first=$(echo $archs | cut -d' ' -f1)
cat <<NEXT

Built in $out/:
$(ls -1 "$out" | sed 's/^/  /')

Next (replace BUCKET, the license and the log groups):
  aws s3 cp $out/rds-forwarder-$first.zip s3://BUCKET/rds-forwarder/rds-forwarder-$first.zip
  aws cloudformation deploy --stack-name WhaTapRDS --template-file deploy/install.yaml \\
      --capabilities CAPABILITY_IAM --parameter-overrides \\
      CodeBucket=BUCKET CodeKey=rds-forwarder/rds-forwarder-$first.zip Architecture=$first \\
      ProjectAccessKey=YOUR_PROJECT_ACCESS_KEY Pcode=YOUR_PCODE
  aws cloudformation deploy --stack-name WhaTapRDSSettings --template-file deploy/settings.yaml \\
      --capabilities CAPABILITY_AUTO_EXPAND --parameter-overrides \\
      WhaTapRDSLogArn=\$(aws cloudformation describe-stacks --stack-name WhaTapRDS \\
        --query "Stacks[0].Outputs[?OutputKey=='WhaTapRDSLogArn'].OutputValue" --output text) \\
      LogGroupNames=/aws/rds/instance/YOUR_DB/error,/aws/rds/instance/YOUR_DB/slowquery AwsRdsNames=YOUR_DB

A custom mapper (optional): upload it and set MapperBucket/MapperKey (and MapperSha256):
  aws s3 cp $out/rds-mapper.wasm s3://BUCKET/rds-forwarder/mapper.wasm   # sha256 $sha
NEXT
