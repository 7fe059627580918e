namespace OrderBookIngestor.Configuration;

/// <summary>
/// Everything the daemon can be told. Layered: appsettings.json beside the binary, then
/// /etc/orderbook-ingestor/appsettings.json, then --config FILE, then ORDERBOOK_* environment variables,
/// then command-line flags. The JSON section is "Ingestor"; property names match these.
/// </summary>
public sealed class IngestorOptions
{
    /// <summary>Npgsql connection string or postgresql:// URL. Prefer ORDERBOOK_DATABASE so the password stays off the command line.</summary>
    public string? Database { get; set; }

    /// <summary>Symbols to record, or the single entry "ALL" for every TRADING USDT-margined perpetual.</summary>
    public List<string> Symbols { get; set; } = ["BTCUSDT", "ETHUSDT"];

    public List<string> Channels { get; set; } = ["bookTicker", "aggTrade"];

    /// <summary>Connections per route. More shards spread parsing over cores and bound what one reconnect can disturb.</summary>
    public int Shards { get; set; } = 1;

    public string WsUrl { get; set; } = "wss://fstream.binance.com";

    public string RestUrl { get; set; } = "https://fapi.binance.com";

    /// <summary>host:port for /health and /metrics, or "none". Loopback by default.</summary>
    public string Http { get; set; } = "127.0.0.1:9470";

    /// <summary>The read API on the same Kestrel (/symbols, /data/{symbol}, /stats). Open on a loopback address; on any
    /// other address it needs a bearer token (ORDERBOOK_API_TOKEN or the systemd credential orderbook-api-token).</summary>
    public bool ReadApi { get; set; } = true;

    /// <summary>Read API queries running at once (its own connection pool of this size); more are answered 429.
    /// 0: half the cores, at least 1 (measured on 2 cores: 4 at once doubled the COPY path's p99, 1 left it unchanged).</summary>
    public int ReadApiMaxConcurrent { get; set; }

    /// <summary>ReadApiMaxConcurrent, with 0 resolved to half the cores (at least 1).</summary>
    public int ReadApiConcurrency => ReadApiMaxConcurrent > 0 ? ReadApiMaxConcurrent : Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>A read API query running longer than this is cancelled by PostgreSQL and answered 503.</summary>
    public int ReadApiStatementTimeoutMs { get; set; } = 10_000;

    /// <summary>Binance allows 1024 streams per connection today; older documents say 200, so we default low.</summary>
    public int MaxStreamsPerConnection { get; set; } = 200;

    /// <summary>Streams named in one SUBSCRIBE message; keeps each control message to a couple of kB.</summary>
    public int StreamsPerSubscribe { get; set; } = 50;

    /// <summary>Control messages per second per connection. Binance closes connections above 10.</summary>
    public int SubscribeMessagesPerSecond { get; set; } = 4;

    /// <summary>Events buffered in memory per table before readers wait (backpressure).</summary>
    public int BufferCapacity { get; set; } = 200_000;

    public int BatchMaxRows { get; set; } = 10_000;

    /// <summary>No batch waits longer than this after the previous one, even if it is small: the latency bound at low rates.</summary>
    public int BatchMaxAgeMs { get; set; } = 100;

    /// <summary>Rows per COPY the flusher aims for: it sends once this many are waiting, or once this many will
    /// have come at the rate they are arriving. Lower is lower latency and more commits per row.</summary>
    public int BatchTargetRows { get; set; } = 100;

    /// <summary>When the managed heap has grown this much past what the last full collection left, or the GC keeps this
    /// much more memory committed than the heap, the daemon asks for one (checked every 30 s; see Hosting/HeapTrimmer).
    /// Each check also returns glibc's free malloc memory to the system. 0 leaves both to the GC and the C library.</summary>
    public int HeapSlackMegabytes { get; set; } = 8;

    /// <summary>A connection that delivers nothing for this long is treated as half-open and replaced.</summary>
    public int NoDataTimeoutSeconds { get; set; } = 60;

    /// <summary>How long the kernel may gather a busy connection's messages before it wakes the reader (SO_RCVLOWAT,
    /// sized from the connection's measured rate; see Feeds/ReadCoalescer). Each wake-up costs far more than the
    /// messages it brings at the rates most users run. 0 wakes the reader for every packet.</summary>
    public int ReadCoalesceMs { get; set; } = 20;

    public int ReconnectMinDelayMs { get; set; } = 250;

    public int ReconnectMaxDelayMs { get; set; } = 30_000;

    /// <summary>A connection up this long counts as stable and resets the reconnect backoff.</summary>
    public int StableConnectionSeconds { get; set; } = 60;

    /// <summary>Connections are replaced (overlapping, no gap) after this long, staggered up to 18% earlier per shard.
    /// Binance closes a connection at 24 hours; the default rotates at 23.5.</summary>
    public int MaxConnectionLifetimeSeconds { get; set; } = 84_600;

    /// <summary>How long a replacement connection may take to stream before the rotation is abandoned and retried.</summary>
    public int RotationTimeoutSeconds { get; set; } = 30;

    /// <summary>A subscribed stream with no data for this long, while other streams on its route flow, is reported silent.</summary>
    public int SilentStreamSeconds { get; set; } = 300;

    /// <summary>With --symbols ALL: how often exchangeInfo is read again to follow new listings and delistings.</summary>
    public int ExchangeInfoRefreshSeconds { get; set; } = 600;

    /// <summary>Largest frame accepted; Binance market frames are well under 64 kB.</summary>
    public int MaxFrameBytes { get; set; } = 1 << 20;

    /// <summary>Seconds between the one-line progress summaries in the log. 0 disables them.</summary>
    public int SummaryIntervalSeconds { get; set; } = 10;

    /// <summary>How long shutdown may spend flushing buffered rows. Keep below systemd's TimeoutStopSec.</summary>
    public int DrainTimeoutSeconds { get; set; } = 20;

    /// <summary>Levels per side in marketdata.orderbook_top.</summary>
    public int TopLevels { get; set; } = 10;

    /// <summary>How often the in-memory books are sampled into marketdata.orderbook_top; 0 turns sampling off.</summary>
    public int TopIntervalMs { get; set; } = 1000;

    /// <summary>How often each synced depth book is stored in marketdata.book_snapshots (source 'daemon', top SnapshotLimit levels
    /// per side), so that marketdata.book_at replays at most this many seconds of diffs; 0 turns it off.</summary>
    public int BookSnapshotSeconds { get; set; } = 300;

    /// <summary>With the openInterest channel: each symbol's open interest is polled this often (REST, weight 1).</summary>
    public int OpenInterestSeconds { get; set; } = 60;

    /// <summary>Depth of the REST snapshot a book is synced from (GET /fapi/v1/depth limit; weight 20 at 1000).</summary>
    public int SnapshotLimit { get; set; } = 1000;

    /// <summary>Most aggTrades fetched from REST to fill one hole; beyond that the rest goes to the gap ledger.</summary>
    public int MaxBackfillTrades { get; set; } = 100_000;

    /// <summary>REST request weight we allow ourselves per minute. Binance's IP limit is 2400; leave room for other tools.</summary>
    public int RestWeightPerMinute { get; set; } = 1200;

    /// <summary>REST requests in flight at once.</summary>
    public int RestMaxInFlight { get; set; } = 2;

    /// <summary>Directory of the disk spool used while the database is unavailable (relative to the working
    /// directory: /var/lib/orderbook-ingestor under systemd). Empty turns spooling off (batches wait in memory).</summary>
    public string SpoolDirectory { get; set; } = "spool";

    /// <summary>Most disk the spool may use; past it, batches wait in memory and readers are slowed.</summary>
    public int SpoolMaxMegabytes { get; set; } = 10_240;

    public int SpoolSegmentMegabytes { get; set; } = 64;

    /// <summary>Where batches the database refused (a constraint, a type, a permission: retrying the same bytes gets the
    /// same answer) are kept with the error, until `orderbook-ingestor quarantine retry` puts them in after the cause is
    /// fixed. Relative to the working directory, beside the spool.</summary>
    public string QuarantineDirectory { get; set; } = "quarantine";

    /// <summary>auto (the best the database offers), timescaledb, timescaledb-apache, postgres or citus. Chosen at the
    /// first migrate and recorded; a database's tier cannot change in place.</summary>
    public string StorageTier { get; set; } = "auto";

    /// <summary>Days of rows kept per table (book_ticker, trades, depth_events, book_snapshots, orderbook_top, mark_price,
    /// liquidations, open_interest, bt_1s, trade_1s, derivatives_1s); 0 keeps forever. Tables not named keep their defaults (30, 90, 30,
    /// 30, 90, 365, 365, 365, 365, 365, 365).</summary>
    public Dictionary<string, int> RetentionDays { get; set; } = [];

    /// <summary>Partition (or TimescaleDB chunk) width in hours per table; divides 24 or is whole days.
    /// Defaults 6 for book_ticker and depth_events, 24 for trades, book_snapshots and orderbook_top, 168 for mark_price,
    /// liquidations, open_interest and the rollups.</summary>
    public Dictionary<string, int> ChunkHours { get; set; } = [];

    /// <summary>How often partitions are created ahead and expired ones dropped (tiers without TimescaleDB policies).</summary>
    public int MaintenanceIntervalSeconds { get; set; } = 300;

    /// <summary>How often newly committed batches are rolled up into bt_1s and trade_1s (tiers without continuous aggregates) and
    /// derivatives_1s (every tier); 0 turns it off.
    /// 5 s: bt_1s is then at most ~7 s behind, and the rollups take less of the database (measured: at the top of case a,
    /// 177k msg/s achieved at 5 s against 155k at 1 s and 220k with rollups off).</summary>
    public int RollupIntervalMs { get; set; } = 5000;

    /// <summary>"K/N": this daemon records the symbols whose name hashes to K of N (0-based); several daemons
    /// with the same N and different K split the symbol set and share one database. "0/1" records all.</summary>
    public string Instance { get; set; } = "0/1";

    /// <summary>Apply schema migrations at start (the same as running `migrate` first).</summary>
    public bool AutoMigrate { get; set; } = true;

    /// <summary>Rolling daily log file path, or empty for console only.</summary>
    public string? LogFile { get; set; }

    public int LogRetainedFiles { get; set; } = 14;

    public string LogLevel { get; set; } = "Information";
}
