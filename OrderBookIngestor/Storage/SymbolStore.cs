using Npgsql;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Storage;

/// <summary>Registers symbols in marketdata.symbols and returns their ids. Exchange strings travel only as parameters.</summary>
public sealed class SymbolStore
{
    public const string ExchangeName = "binance-usdm";

    private readonly NpgsqlDataSource _dataSource;

    public SymbolStore(NpgsqlDataSource dataSource) => _dataSource = dataSource;

    public async Task<Dictionary<string, int>> RegisterAsync(IEnumerable<SymbolInfo> symbols, CancellationToken ct)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var list = symbols.ToList();
        if (list.FirstOrDefault(s => !SymbolNames.IsValid(s.Symbol)) is { } bad)
        {
            throw new ArgumentException($"'{bad.Symbol}' is not a valid symbol.", nameof(symbols));
        }

        // One round trip for every symbol: start-up time matters with --symbols ALL. The time is taken in VALUES, not
        // in DO UPDATE: Citus (symbols is a reference table there) allows only IMMUTABLE functions in DO UPDATE SET.
        await using var batch = new NpgsqlBatch(connection, tx);
        foreach (var s in list)
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO marketdata.symbols (exchange, symbol, base_asset, quote_asset, is_active, updated_at)
                VALUES ($1, $2, $3, $4, true, now())
                ON CONFLICT (exchange, symbol) DO UPDATE
                    SET base_asset = EXCLUDED.base_asset, quote_asset = EXCLUDED.quote_asset,
                        is_active = true, updated_at = EXCLUDED.updated_at
                RETURNING id
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = ExchangeName });
            cmd.Parameters.Add(new NpgsqlParameter { Value = s.Symbol });
            cmd.Parameters.Add(new NpgsqlParameter { Value = s.BaseAsset });
            cmd.Parameters.Add(new NpgsqlParameter { Value = s.QuoteAsset });
            batch.BatchCommands.Add(cmd);
        }

        if (list.Count > 0)
        {
            await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
            foreach (var s in list)
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                ids[s.Symbol] = reader.GetInt32(0);
                await reader.NextResultAsync(ct).ConfigureAwait(false);
            }
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return ids;
    }

    /// <summary>Marks symbols no longer recorded (removed from the configuration, or delisted).</summary>
    public async Task DeactivateAsync(IReadOnlyCollection<int> symbolIds, CancellationToken ct)
    {
        foreach (var id in symbolIds)
        {
            await using var cmd = _dataSource.CreateCommand("UPDATE marketdata.symbols SET is_active = false, updated_at = now() WHERE id = $1");
            cmd.Parameters.Add(new NpgsqlParameter { Value = id });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }
}
