# shellcheck shell=bash
# Publishes the trimmed, self-contained single-file binary to artifacts/publish/orderbook-ingestor.
obi_publish() {
  local root=$1
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "The .NET 10 SDK is required to build (https://dotnet.microsoft.com/download)." >&2; return 1
  fi
  dotnet publish "$root/OrderBookIngestor/OrderBookIngestor.csproj" -c Release -o "$root/artifacts/publish" -nologo -v quiet >&2 \
    || { echo "build failed" >&2; return 1; }
  OBI_BIN="$root/artifacts/publish/orderbook-ingestor"
}
