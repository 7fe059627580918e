using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Cli;

/// <summary>
/// Micro-benchmarks of the hot path on one thread: the frame parser and the COPY row encoder, over
/// simulator-generated frames. Prints messages/s and bytes allocated per message. scripts/bench.sh runs it.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure the parser and the COPY encoder on this machine (one thread) and print messages/s and bytes allocated per message.");
        var seconds = new Option<double>("--seconds") { Description = "Measuring time per benchmark.", DefaultValueFactory = _ => 3 };
        var simulatorRates = new Option<int[]>("--simulator-rates")
        {
            Description = "Instead: measure the simulator's own offer rate, stepping through these events/s until it cannot keep up.",
            AllowMultipleArgumentsPerToken = true,
        };
        command.Add(seconds);
        command.Add(simulatorRates);
        command.SetAction(async (parse, ct) =>
        {
            var duration = TimeSpan.FromSeconds(Math.Clamp(parse.GetValue(seconds), 0.5, 600));
            if (parse.GetValue(simulatorRates) is { Length: > 0 } rates)
            {
                if (rates.Any(r => r < 1))
                {
                    await Console.Error.WriteLineAsync("orderbook-ingestor bench: --simulator-rates must be positive events per second.").ConfigureAwait(false);
                    return 2;
                }

                await SimulatorBench.RunAsync(rates, duration.TotalSeconds, ct).ConfigureAwait(false);
                return 0;
            }

            var (frames, symbols) = Frames(50, [MarketChannel.BookTicker, MarketChannel.AggTrade]);
            var parser = new FrameParser(symbols);
            Report("parser (combined frames, bookTicker+aggTrade)", Measure(duration, frames, f => parser.Parse(f, 1, out _)));
            var (depthFrames, _) = Frames(50, [MarketChannel.Depth100ms]);
            Report("parser (combined frames, depth@100ms, levels returned to the pool as the flusher does)", Measure(duration, depthFrames, f =>
            {
                if (parser.Parse(f, 1, out var r) == FrameKind.Depth)
                {
                    r.Depth.Release();
                }
            }));

            var events = frames.Select(f => { parser.Parse(f, 1, out var r); return r; }).ToArray();
            using var batch = new CopyBatch(10_000);
            var i = 0;
            Report("COPY row encoder", Measure(duration, events, e =>
            {
                if (++i % 10_000 == 0)
                {
                    batch.Reset();
                }

                if (e.Kind == FrameKind.BookTicker)
                {
                    BookTickerRows.Encode(batch, e.BookTicker);
                }
                else
                {
                    TradeRows.Encode(batch, e.Trade);
                }
            }));
            return 0;
        });
        return command;
    }

    /// <summary>Combined-stream frames from the simulator's market, and the symbol table that resolves them.</summary>
    internal static (byte[][] Frames, SymbolTable Symbols) Frames(int symbolCount, MarketChannel[] channels)
    {
        var universe = SymbolUniverse.Create(symbolCount);
        var market = new SimulatedMarket(universe, 1, TimeProvider.System);
        var frames = new List<byte[]>();
        for (var n = 0; n < 100; n++)
        {
            foreach (var s in universe)
            {
                foreach (var channel in channels)
                {
                    var e = market.Next(MarketChannels.StreamName(s.Symbol, channel));
                    frames.Add([.. Encoding.ASCII.GetBytes($"{{\"stream\":\"{e.Stream}\",\"data\":"), .. e.Data, (byte)'}']);
                }
            }
        }

        var ids = universe.ToDictionary(s => s.Symbol, s => s.Index + 1);
        return (frames.ToArray(), new SymbolTable(ids));
    }

    private static (double PerSecond, double BytesPerMessage, long Messages) Measure<T>(TimeSpan duration, T[] items, Action<T> action)
    {
        // Warm up: tiering and PGO settle before measuring.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed < TimeSpan.FromSeconds(1))
        {
            foreach (var item in items)
            {
                action(item);
            }
        }

        long messages = 0;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            foreach (var item in items)
            {
                action(item);
            }

            messages += items.Length;
        }

        var elapsed = clock.Elapsed.TotalSeconds;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        return (messages / elapsed, allocated / (double)messages, messages);
    }

    private static void Report(string name, (double PerSecond, double BytesPerMessage, long Messages) r)
        => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: {r.PerSecond:N0} messages/s on one thread, {r.BytesPerMessage:F3} bytes allocated per message ({r.Messages:N0} messages)"));
}
