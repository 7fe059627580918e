namespace OrderBookIngestor.Observability;

public enum ConnectionState
{
    Idle,
    Connecting,
    Subscribing,
    Streaming,
    Backoff,
    Stopped,
}
