using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Support;

/// <summary>A fixture that writes through the daemon's real write path (binary COPY with the batch ledger) on one tier's server.</summary>
public abstract class StorageTest(string tier) : DatabaseTest(tier)
{
    protected static readonly DateTimeOffset Now = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    protected Task<MigrationOutcome> Migrate(IngestorOptions? options = null, bool roles = false)
        => new SchemaMigrator(Db.DataSource, NullLogger.Instance, options).MigrateAsync(CancellationToken.None, roles);

    /// <summary>Brings the 1-second rollups up to date the way the tier does: the daemon's pass, and on full TimescaleDB a
    /// refresh of the continuous aggregates too (its daemon pass keeps derivatives_1s only; null is returned there).</summary>
    protected async Task<(int Batches, long PendingAfter)?> RefreshRollupsAsync()
    {
        var (batches, pending, _) = await Maintainer(TimeProvider.System).RollupOnceAsync(CancellationToken.None);
        if (StorageTiers.DaemonMaintained(Tier))
        {
            return (batches, pending);
        }

        await Db.RefreshContinuousAggregatesAsync();
        return null;
    }

    protected StorageMaintainer Maintainer(TimeProvider time, MaintenanceStats? stats = null, NpgsqlDataSource? ds = null)
        => new(ds ?? Db.DataSource, time, NullLogger.Instance, stats ?? new MaintenanceStats(), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), TimeSpan.Zero);

    internal static async Task CommitAsync<T, TEncoder>(NpgsqlDataSource ds, IEnumerable<T> rows)
        where T : struct
        where TEncoder : IRowEncoder<T>
    {
        using var batch = new CopyBatch(1024);
        foreach (var row in rows)
        {
            TEncoder.Encode(batch, row);
        }

        Assert.That(await new BatchCommitter(ds).CommitAsync(BatchCommitter.TableId(TEncoder.Table), batch.Id, batch.Rows, batch.Payload(), CancellationToken.None), Is.True);
    }

    protected static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    /// <summary>The newest boundary of <paramref name="table"/>'s chunks at least a minute ago: TimescaleDB cuts them at
    /// whole multiples of the width since the epoch.</summary>
    protected async Task<DateTimeOffset> ChunkBoundaryAsync(string table)
    {
        var width = (long)(await Db.ScalarAsync<TimeSpan>($"SELECT chunk_interval FROM marketdata.storage_tables WHERE table_name = '{table}'")).TotalMilliseconds;
        var recent = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds();
        return DateTimeOffset.FromUnixTimeMilliseconds(recent - (recent % width));
    }

    protected static BookTickerEvent Book(int symbol, long id, DateTimeOffset t, double bid, double ask, double bidQty = 1, double askQty = 2, long latencyMs = 5)
        => new(symbol, id, Ms(t), Ms(t), (Ms(t) + latencyMs) * 1000, bid, bidQty, ask, askQty);

    protected static TradeEvent Trade(int symbol, long id, DateTimeOffset t, double price, double qty, bool maker, long latencyMs = 5)
        => new(symbol, id, Ms(t), Ms(t), (Ms(t) + latencyMs) * 1000, price, qty, id * 3, (id * 3) + 2, maker);

    protected async Task<int> RegisterAsync(string symbol)
        => (await new SymbolStore(Db.DataSource).RegisterAsync([new(symbol, symbol[..^4], "USDT", "TRADING", "PERPETUAL")], CancellationToken.None))[symbol];
}
