using System.CommandLine;
using System.Globalization;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Cli;

/// <summary>`quarantine list` and `quarantine retry`: the operator's side of the batches the database refused.</summary>
public static class QuarantineCommand
{
    public static Command Create()
    {
        var command = new Command("quarantine", "Batches the database refused (kept with the error in QuarantineDirectory): list them, or put them in once the cause is fixed.");

        var list = new Command("list", "List the quarantined batches, oldest first: when, table, rows, the database's error and the file.");
        var listFlags = RunFlags.AddTo(list);
        list.SetAction(parse =>
        {
            var options = RunCommand.LoadOrReport(parse, listFlags, requireDatabase: false);
            if (options is null)
            {
                return 2;
            }

            var quarantine = Open(options);
            var batches = quarantine.List();
            foreach (var b in batches)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{b.QuarantinedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z  {b.Table,-14} {b.Rows,7} rows  {b.Error}  {b.Path}"));
            }

            Console.WriteLine($"{batches.Count} batch(es), {batches.Sum(b => (long)b.Rows)} rows in {quarantine.DirectoryPath}");
            return 0;
        });
        command.Add(list);

        var retry = new Command("retry", "Put every quarantined batch into the database (each exactly once, through the batch ledger); those it still refuses stay. Exit 0 when none is left.");
        var retryFlags = RunFlags.AddTo(retry);
        retry.SetAction(async (parse, ct) =>
        {
            var options = RunCommand.LoadOrReport(parse, retryFlags, requireDatabase: true);
            return options is null ? 2 : await RetryAsync(options, ct).ConfigureAwait(false);
        });
        command.Add(retry);
        return command;
    }

    private static Quarantine Open(IngestorOptions options)
        => new(IngestionPipeline.InstanceDirectory(options, options.QuarantineDirectory), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System);

    internal static async Task<int> RetryAsync(IngestorOptions options, CancellationToken ct)
    {
        var quarantine = Open(options);
        await using var dataSource = IngestorHost.CreateDataSource(options.Database!);
        var committer = new BatchCommitter(dataSource);
        int stored = 0, already = 0, refused = 0, damaged = 0;
        foreach (var batch in quarantine.List())
        {
            var record = Quarantine.Read(batch, d => Console.Error.WriteLine($"{batch.Path}: {d.Problem} at offset {d.Offset} ({d.Bytes} bytes); left in place"));
            if (record is null)
            {
                damaged++;
                continue;
            }

            try
            {
                var committed = await committer.CommitAsync(record.TableId, record.BatchId, record.Rows, record.Payload, ct).ConfigureAwait(false);
                Quarantine.Remove(batch);
                (stored, already) = committed ? (stored + 1, already) : (stored, already + 1);
                Console.WriteLine($"{(committed ? "stored" : "already stored")}: {batch.Table} {batch.Rows} rows ({Path.GetFileName(batch.Path)})");
            }
            catch (Exception ex) when (DatabaseErrors.IsRejected(ex))
            {
                refused++;
                Console.Error.WriteLine($"still refused: {batch.Table} {batch.Rows} rows ({Path.GetFileName(batch.Path)}): {DatabaseErrors.Describe(ex)}");
            }
            catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex) && !ct.IsCancellationRequested)
            {
                Console.Error.WriteLine($"orderbook-ingestor: the database is unavailable ({DatabaseErrors.Describe(ex)}); nothing more was tried");
                return 1;
            }
        }

        Console.WriteLine($"{stored} stored, {already} already stored, {refused} still refused, {damaged} unreadable");
        return refused + damaged == 0 ? 0 : 1;
    }
}
