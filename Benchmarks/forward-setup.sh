# Shared by run-ingest.sh and compare-together.sh (sourced, not run): the forwarding workload.

# nginx_config DIR: a one-worker nginx on 127.0.0.1:18081 answering 200 {"ok":true}, in DIR.
nginx_config() {
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<NGINX
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18081; location / { return 200 '{"ok":true}'; } } }
NGINX
}

# forward_config DIR PORT: connector `sink` (signed, loopback allowed, concurrency 64) posting
# to 127.0.0.1:PORT, and workflow `forward` sending each bench.forward event whole to it.
forward_config() {
  mkdir -p "$1/connectors" "$1/workflows"
  cat > "$1/connectors/sink.yaml" <<YAML
id: sink
kind: http
base_url: http://127.0.0.1:$2
signing: { secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }
allow_networks: [ 127.0.0.0/8 ]
concurrency: 64
YAML
  cat > "$1/workflows/forward.yaml" <<YAML
id: forward
trigger: { event: bench.forward }
steps:
  - id: send
    connector: sink
    operation: request
    with: { path: /hook, body: "= event" }
YAML
}
