using Microsoft.Extensions.Logging;

namespace OrderBookIngestor.Observability;

/// <summary>
/// Every log line of the daemon, source-generated. Event ids: 1xxx feeds, 2xxx parsing, 3xxx storage,
/// 4xxx books, 5xxx simulator, 9xxx lifecycle.
/// </summary>
internal static partial class Log
{
    // 1xxx feeds
    [LoggerMessage(1001, LogLevel.Information, "Shard {Shard}: connecting to {Uri} for {Streams} streams")]
    public static partial void Connecting(ILogger logger, string shard, Uri uri, int streams);

    [LoggerMessage(1002, LogLevel.Information, "Shard {Shard}: {Streams} streams subscribed and acknowledged")]
    public static partial void Subscribed(ILogger logger, string shard, int streams);

    [LoggerMessage(1003, LogLevel.Warning, "Shard {Shard}: connection lost after {Seconds:F1}s ({Reason}); reconnecting in {DelayMs} ms")]
    public static partial void ConnectionLost(ILogger logger, string shard, double seconds, string reason, long delayMs);

    [LoggerMessage(1004, LogLevel.Warning, "Shard {Shard}: control message {Id} was refused by the exchange: {Frame}")]
    public static partial void ControlRefused(ILogger logger, string shard, long id, string frame);

    [LoggerMessage(1005, LogLevel.Information, "Shard {Shard}: state {From} -> {To}")]
    public static partial void StateChanged(ILogger logger, string shard, ConnectionState from, ConnectionState to);

    [LoggerMessage(1006, LogLevel.Information, "Planned {Shards} connections for {Streams} streams ({Symbols} symbols × {Channels})")]
    public static partial void Planned(ILogger logger, int shards, int streams, int symbols, string channels);

    [LoggerMessage(1007, LogLevel.Warning, "exchangeInfo unavailable ({Reason}); registering the given symbols with assets guessed from their names")]
    public static partial void ExchangeInfoUnavailable(ILogger logger, string reason);

    [LoggerMessage(1010, LogLevel.Information, "Backfilling {Symbol} aggTrade ids {From}..{To} from REST")]
    public static partial void BackfillStarted(ILogger logger, string symbol, long from, long to);

    [LoggerMessage(1011, LogLevel.Information, "Backfill of {Symbol} ids {From}..{To} done; {Missing} ids could not be recovered and are in the gap ledger")]
    public static partial void BackfillFinished(ILogger logger, string symbol, long from, long to, long missing);

    [LoggerMessage(1012, LogLevel.Information, "Shard {Shard}: rotated to a fresh connection after {Hours:F2} h (replacement streaming before the old one closed)")]
    public static partial void Rotated(ILogger logger, string shard, double hours);

    [LoggerMessage(1013, LogLevel.Warning, "Shard {Shard}: rotation abandoned ({Reason}); keeping the current connection and retrying shortly")]
    public static partial void RotationFailed(ILogger logger, string shard, string reason);

    [LoggerMessage(1014, LogLevel.Warning, "Stream {Stream} is silent: subscribed but no data for {Seconds}s while other {Route} streams flow")]
    public static partial void StreamSilent(ILogger logger, string stream, long seconds, string route);

    [LoggerMessage(1015, LogLevel.Information, "Stream {Stream} is flowing again")]
    public static partial void StreamFlowing(ILogger logger, string stream);

    [LoggerMessage(1016, LogLevel.Information, "Shard {Shard}: {Sign}{Changed} streams, now {Total}")]
    public static partial void StreamsChanged(ILogger logger, string shard, string sign, int changed, int total);

    [LoggerMessage(1017, LogLevel.Information, "Reload: {Added} streams added, {Removed} removed, {NewSymbols} new symbols, {NewShards} new connections")]
    public static partial void Reloaded(ILogger logger, int added, int removed, int newSymbols, int newShards);

    [LoggerMessage(1018, LogLevel.Error, "Reload refused, keeping the running configuration: {Error}")]
    public static partial void ReloadRefused(ILogger logger, string error);

    [LoggerMessage(1021, LogLevel.Warning, "SIGHUP is ignored in this process (started under nohup, or by a supervisor that ignores it): a reload (systemctl reload, kill -HUP) will do nothing; restart to apply a changed configuration")]
    public static partial void HangupIgnored(ILogger logger);

    [LoggerMessage(1020, LogLevel.Information, "Reload requested ({Source}): re-reading the configuration")]
    public static partial void ReloadRequested(ILogger logger, string source);

    [LoggerMessage(1019, LogLevel.Debug, "Heap {HeapMb} MB, or the GC's committed memory, more than the slack past what is in use: collected, {LiveMb} MB left, in {Milliseconds:F1} ms")]
    public static partial void HeapTrimmed(ILogger logger, long heapMb, long liveMb, double milliseconds);

    // 2xxx parsing
    [LoggerMessage(2001, LogLevel.Warning, "Shard {Shard}: frame rejected ({Reason}, {Suppressed} more since the last sample): {Frame}")]
    public static partial void FrameRejected(ILogger logger, string shard, string reason, long suppressed, string frame);

    // 3xxx storage
    [LoggerMessage(3001, LogLevel.Information, "Schema migration {Name} applied")]
    public static partial void MigrationApplied(ILogger logger, string name);

    [LoggerMessage(3025, LogLevel.Warning, "Schema migration: {Message}")]
    public static partial void MigrationWarning(ILogger logger, string message);

    [LoggerMessage(3026, LogLevel.Warning, "Schema migration met another session's change of a shared catalog row (attempt {Attempt}), running it again: {Error}")]
    public static partial void MigrationRetried(ILogger logger, int attempt, string error);

    [LoggerMessage(3002, LogLevel.Warning, "COPY into {Table} failed (attempt {Attempt}, {Rows} rows kept for retry in {DelayMs} ms): {Error}")]
    public static partial void CopyFailed(ILogger logger, string table, int attempt, int rows, long delayMs, string error);

    [LoggerMessage(3028, LogLevel.Information, "Committing {Tables} in one transaction failed ({Error}); each table commits on its own instead ({Suppressed} similar suppressed)")]
    public static partial void JointCommitFailed(ILogger logger, string tables, string error, long suppressed);

    [LoggerMessage(3003, LogLevel.Debug, "COPY into {Table}: {Rows} rows in {Milliseconds:F1} ms")]
    public static partial void CopyCommitted(ILogger logger, string table, int rows, double milliseconds);

    [LoggerMessage(3004, LogLevel.Error, "Drain deadline passed: {Rows} rows for {Table} were not committed and are lost")]
    public static partial void RowsAbandoned(ILogger logger, string table, int rows);

    [LoggerMessage(3020, LogLevel.Information, "Storage: {Action} {Table} {Object}")]
    public static partial void StorageAction(ILogger logger, string action, string table, string @object);

    [LoggerMessage(3021, LogLevel.Warning, "Storage {Job} failed ({Error}); retrying next pass ({Suppressed} similar suppressed)")]
    public static partial void StorageJobFailed(ILogger logger, string job, string error, long suppressed);

    [LoggerMessage(3027, LogLevel.Warning, "Storage maintenance lost a race with another session (attempt {Attempt}), running it again: {Error}")]
    public static partial void MaintenanceRetried(ILogger logger, int attempt, string error);

    [LoggerMessage(3022, LogLevel.Warning, "Storage tier: {Note}")]
    public static partial void StorageTierNote(ILogger logger, string note);

    [LoggerMessage(3023, LogLevel.Information, "Instance {Instance}: recording {Count} of {Total} symbols (the rest belong to the other instances)")]
    public static partial void InstanceShare(ILogger logger, string instance, int count, int total);

    [LoggerMessage(3005, LogLevel.Information, "Database {Database}: schema up to date ({Applied} migrations applied now), storage tier {Tier}")]
    public static partial void SchemaReady(ILogger logger, string database, int applied, string tier);

    [LoggerMessage(3006, LogLevel.Warning, "Database not reachable ({Error}); waiting for it, however long it takes: next attempt in {DelayMs} ms")]
    public static partial void DatabaseWaiting(ILogger logger, string error, long delayMs);

    [LoggerMessage(3007, LogLevel.Information, "COPY into {Table} succeeded again after {Attempts} failed attempts")]
    public static partial void CopyRecovered(ILogger logger, string table, int attempts);

    [LoggerMessage(3008, LogLevel.Warning, "Gap recorded: {Stream} {Reason} ids {First}..{Last}, {Seconds:F1}s")]
    public static partial void GapRecorded(ILogger logger, string stream, string reason, long? first, long? last, double seconds);

    [LoggerMessage(3009, LogLevel.Error, "Drain deadline passed: {Rows} gap ledger rows were not written")]
    public static partial void GapRowsLost(ILogger logger, int rows);

    [LoggerMessage(3010, LogLevel.Error, "Spool segment {Segment}: {Problem} at offset {Offset}; skipped {Bytes} bytes to the next valid record (rows there are lost)")]
    public static partial void SpoolCorrupt(ILogger logger, string segment, long offset, long bytes, string problem);

    [LoggerMessage(3011, LogLevel.Warning, "Database unavailable: {Table} batches go to the disk spool ({Error})")]
    public static partial void SpoolingStarted(ILogger logger, string table, string error);

    [LoggerMessage(3012, LogLevel.Information, "Spool replayed: {Records} batches, {Rows} rows committed ({Skipped} were already committed, {Quarantined} refused by the database and quarantined)")]
    public static partial void SpoolReplayed(ILogger logger, int records, long rows, int skipped, int quarantined);

    [LoggerMessage(3013, LogLevel.Error, "Spool full ({Bytes} bytes, cap {Cap}): holding {Table} batches in memory, readers will be slowed")]
    public static partial void SpoolFull(ILogger logger, long bytes, long cap, string table);

    [LoggerMessage(3014, LogLevel.Error, "The database refused a {Table} batch of {Rows} rows ({Error}): quarantined in {Path}, ingestion goes on; fix the cause, then run `orderbook-ingestor quarantine retry` ({Suppressed} more quarantined since the last such line)")]
    public static partial void BatchQuarantined(ILogger logger, string table, int rows, string error, string path, long suppressed);

    [LoggerMessage(3015, LogLevel.Error, "Could not write a refused {Table} batch of {Rows} rows to the quarantine in {Directory} ({Error}); keeping it in memory and retrying")]
    public static partial void QuarantineWriteFailed(ILogger logger, string table, int rows, string directory, string error);

    [LoggerMessage(3016, LogLevel.Error, "The database refused a gap row ({Error}); it is not stored, and is logged here in full: symbol_id {SymbolId}, stream {Stream}, {Start:O} to {End:O}, ids {First}..{Last}, reason {Reason}, details {Details}")]
    public static partial void GapRowRejected(ILogger logger, string error, int symbolId, string stream, DateTimeOffset start, DateTimeOffset end, long? first, long? last, string reason, string? details);

    [LoggerMessage(3017, LogLevel.Warning, "Spool replay paused: {Error}; trying again shortly")]
    public static partial void SpoolReplayFailed(ILogger logger, string error);

    [LoggerMessage(3018, LogLevel.Warning, "Gap row not written yet ({Error}); retrying in {DelayMs} ms")]
    public static partial void GapWriteFailed(ILogger logger, string error, long delayMs);

    [LoggerMessage(3019, LogLevel.Error, "A damaged spool record held {Rows} {Table} rows of {Symbol}, ids {FirstId}..{LastId}, {From:O} to {To:O}: trades are backfilled from REST, the rest is in feed_gaps (spool_corrupt)")]
    public static partial void SpoolLoss(ILogger logger, string table, string symbol, int rows, long firstId, long lastId, DateTimeOffset from, DateTimeOffset to);

    [LoggerMessage(3024, LogLevel.Error, "Spool damage at offset {Offset} ({Bytes} bytes, {Problem}) shows no readable rows: what it held is unknown")]
    public static partial void SpoolLossUnknown(ILogger logger, long offset, long bytes, string problem);

    // 4xxx books
    [LoggerMessage(4001, LogLevel.Warning, "Depth snapshot for {Symbol} failed (attempt {Attempt}): {Error}")]
    public static partial void SnapshotFailed(ILogger logger, string symbol, int attempt, string error);

    [LoggerMessage(4002, LogLevel.Information, "Depth snapshot for {Symbol} at update {LastUpdateId}: {Outcome}")]
    public static partial void SnapshotApplied(ILogger logger, string symbol, long lastUpdateId, string outcome);

    // 5xxx simulator
    [LoggerMessage(5001, LogLevel.Information, "Simulator listening on {Url}: {Symbols} symbols, {Rate} events/s, {Events} events (0 = unlimited), seed {Seed}")]
    public static partial void SimulatorListening(ILogger logger, string url, int symbols, int rate, long events, int seed);

    [LoggerMessage(5002, LogLevel.Warning, "Simulator: client {Client} too slow ({Queued} frames queued); closing it as the exchange would")]
    public static partial void SimulatorSlowClient(ILogger logger, int client, int queued);

    // 9xxx lifecycle
    [LoggerMessage(9001, LogLevel.Information, "orderbook-ingestor {Version} starting: symbols {Symbols}, channels {Channels}, database {Database}")]
    public static partial void Starting(ILogger logger, string version, string symbols, string channels, string database);

    [LoggerMessage(9002, LogLevel.Information, "Pipeline running: {Shards} connections, HTTP on {Http}")]
    public static partial void Running(ILogger logger, int shards, string http);

    [LoggerMessage(9003, LogLevel.Information, "Stopping: readers closed, draining buffers")]
    public static partial void Draining(ILogger logger);

    [LoggerMessage(9004, LogLevel.Information, "Stopped: {BookTicker} book_ticker rows and {Trades} trades committed in total (replayed from the spool included)")]
    public static partial void Stopped(ILogger logger, long bookTicker, long trades);

    [LoggerMessage(9013, LogLevel.Error, "Drain deadline passed: {Events} received events could not be buffered and are lost")]
    public static partial void EventsLostAtShutdown(ILogger logger, long events);

    [LoggerMessage(9005, LogLevel.Information, "{Summary}")]
    public static partial void Summary(ILogger logger, string summary);

    [LoggerMessage(9007, LogLevel.Information, "Told systemd READY=1 (watchdog every {Seconds}s, 0 = off)")]
    public static partial void NotifiedReady(ILogger logger, double seconds);

    [LoggerMessage(9008, LogLevel.Error, "Pipeline stalled, withholding the systemd watchdog ping: {Stall}")]
    public static partial void WatchdogWithheld(ILogger logger, string stall);

    [LoggerMessage(9006, LogLevel.Critical, "Startup failed: {Error}")]
    public static partial void StartupFailed(ILogger logger, string error);

    [LoggerMessage(9009, LogLevel.Debug, "Details of the failure")]
    public static partial void FailureDetails(ILogger logger, Exception exception);

    [LoggerMessage(9010, LogLevel.Error, "{Loop} failed while draining: {Error}")]
    public static partial void DrainTaskFailed(ILogger logger, string loop, string error);

    [LoggerMessage(9011, LogLevel.Critical, "{Loop} ended unexpectedly ({Status}): {Error}; stopping, so that systemd restarts the daemon")]
    public static partial void LoopEnded(ILogger logger, string loop, string status, string error);

    [LoggerMessage(9012, LogLevel.Critical, "Pipeline failed: {Error}")]
    public static partial void PipelineFailed(ILogger logger, string error);

    [LoggerMessage(2040, LogLevel.Warning, "Open interest of {Symbol} not polled ({Why}; {Suppressed} more since the last sample); written to feed_gaps as poll_missed")]
    public static partial void OpenInterestMissed(ILogger logger, string symbol, string why, long suppressed);

    [LoggerMessage(2041, LogLevel.Information, "Mark price of {Symbol}: {Bars} 1-minute bars and {Rates} funding rates backfilled from REST for {From:O} to {To:O} (the window stays a gap: coarser than the live stream)")]
    public static partial void MarkPriceBackfilled(ILogger logger, string symbol, int bars, int rates, DateTimeOffset from, DateTimeOffset to);

    [LoggerMessage(2042, LogLevel.Warning, "Mark price backfill of {Symbol} gave up after {Attempts} attempts ({Error}); the window stays a gap without bars")]
    public static partial void MarkPriceBackfillFailed(ILogger logger, string symbol, int attempts, string error);
}
