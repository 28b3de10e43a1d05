# Shared by the benchmark scripts (source it; it runs nothing by itself): a throwaway
# docker-registry on loopback, a push of a root filesystem tar to it as a one-layer gzip
# OCI image, and the timing and table helpers. The caller sets $work (a scratch
# directory) first and kills $registry_pid in its cleanup.

# start_registry [NAME]: start docker-registry on a free loopback port, its storage,
# config and log under $work/NAME* (NAME defaults to "registry"); sets $port and
# $registry_pid.
start_registry() {
  local name=${1:-registry}
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/$name.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/$name}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
  echo "docker-registry did not start; see $work/$name.log" >&2
  exit 1
}

# upload REPO FILE DIGEST: a monolithic blob upload.
upload() {
  local location sep
  location=$(curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/$1/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$2" "$location${sep}digest=$3" >/dev/null
}

# push_rootfs REPO TAR GZIP_LEVEL: push TAR as REPO:latest, a one-layer gzip image.
# Sets $pushed_layer (the compressed layer file) and $pushed_layer_digest.
push_rootfs() {
  local repo=$1 tar=$2 level=$3 config diff_id config_digest
  pushed_layer=$work/$(basename "$repo").tar.gz config=$work/$(basename "$repo").json
  gzip -c "-$level" "$tar" > "$pushed_layer"
  pushed_layer_digest=sha256:$(sha256sum "$pushed_layer" | cut -d' ' -f1)
  diff_id=sha256:$(sha256sum "$tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$config"
  config_digest=sha256:$(sha256sum "$config" | cut -d' ' -f1)
  upload "$repo" "$pushed_layer" "$pushed_layer_digest"
  upload "$repo" "$config" "$config_digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$config_digest" "$(stat -c %s "$config")" "$pushed_layer_digest" "$(stat -c %s "$pushed_layer")" > "$work/manifest.json"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$work/manifest.json" \
    "http://127.0.0.1:$port/v2/$repo/manifests/latest" >/dev/null
}

# mean NAME HYPERFINE-ARGS...: run hyperfine (its results in $work/NAME.json), print the
# mean in ms with $ms_digits decimals (1 unless set), or nan when it failed.
mean() {
  local name=$1; shift
  hyperfine --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1 \
    || { echo "benchmark $name failed: hyperfine $*" >&2; echo nan; return; }
  ms "$name"
}

# ms NAME: the mean of $work/NAME.json (hyperfine's results) in ms.
ms() {
  python3 -c 'import json,sys; print("%.*f" % (int(sys.argv[2]), json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' \
    "$work/$1.json" "${ms_digits:-1}"
}

# row WHAT BOX_MS OTHER_LABEL OTHER_MS GOAL: add a markdown table row to $rows, with the
# ratio of the two figures when both are there.
rows=()
row() {
  local ratio=""
  if [[ $4 != "" && $4 != nan && $2 != nan ]]; then
    ratio=$(python3 -c "print('%.2fx' % ($2/$4))")
  fi
  rows+=("| $1 | $2 | $3 | ${4:-} | $ratio | $5 |")
}
