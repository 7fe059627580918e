namespace OrderBookIngestor.Feeds;

public enum ConnectionState
{
    Idle,
    Connecting,
    Subscribing,
    Streaming,
    Backoff,
    Stopped,
}
