using Npgsql;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Storage;

/// <summary>
/// At start, what each symbol already has in the database: the last bookTicker time and the highest
/// aggTrade id and depth update id, the last live mark price time. The first live event then reveals the daemon's own downtime (a gap row for bookTicker,
/// a backfill for trades). Each lookup is one index probe on (symbol_id, ts_exchange).
/// </summary>
public static class LastStoredReader
{
    public static async Task<Dictionary<int, LastStored>> ReadAsync(NpgsqlDataSource dataSource, IEnumerable<int> symbolIds, CancellationToken ct)
    {
        var result = new Dictionary<int, LastStored>();
        await using var connection = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        var ids = symbolIds.ToList();
        if (ids.Count == 0)
        {
            return result;
        }

        // One round trip for every symbol, each lookup an index probe.
        await using var batch = new NpgsqlBatch(connection);
        foreach (var id in ids)
        {
            var cmd = new NpgsqlBatchCommand("""
                SELECT (SELECT (extract(epoch FROM max(ts_exchange)) * 1000)::bigint FROM marketdata.book_ticker WHERE symbol_id = $1),
                       t.agg_trade_id, (extract(epoch FROM t.ts_trade) * 1000)::bigint,
                       d.final_update_id, (extract(epoch FROM d.ts_exchange) * 1000)::bigint,
                       (SELECT (extract(epoch FROM max(ts_exchange)) * 1000)::bigint FROM marketdata.mark_price WHERE symbol_id = $1 AND NOT is_backfilled)
                FROM (SELECT 1) one
                LEFT JOIN LATERAL (SELECT agg_trade_id, ts_trade FROM marketdata.trades WHERE symbol_id = $1
                                   ORDER BY ts_exchange DESC, agg_trade_id DESC LIMIT 1) t ON true
                LEFT JOIN LATERAL (SELECT final_update_id, ts_exchange FROM marketdata.depth_events WHERE symbol_id = $1
                                   ORDER BY final_update_id DESC LIMIT 1) d ON true
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = id });
            batch.BatchCommands.Add(cmd);
        }

        await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
        foreach (var id in ids)
        {
            await reader.ReadAsync(ct).ConfigureAwait(false);
            result[id] = new LastStored(
                reader.IsDBNull(0) ? 0 : reader.GetInt64(0),
                reader.IsDBNull(1) ? 0 : reader.GetInt64(1),
                reader.IsDBNull(2) ? 0 : reader.GetInt64(2),
                reader.IsDBNull(3) ? 0 : reader.GetInt64(3),
                reader.IsDBNull(4) ? 0 : reader.GetInt64(4),
                reader.IsDBNull(5) ? 0 : reader.GetInt64(5));
            await reader.NextResultAsync(ct).ConfigureAwait(false);
        }

        return result;
    }
}
