using System.Net.Sockets;
using Npgsql;

namespace OrderBookIngestor.Storage;

/// <summary>
/// The one storage failure policy, shared by every loop that talks to the database. A database that cannot be
/// reached (or is overloaded, shutting down, failing over) is a different event from a database that answered
/// and refused what it was sent:
/// <list type="bullet">
/// <item><b>Unavailable</b>: retry with back-off; batches go to the disk spool meanwhile.</item>
/// <item><b>Rejected</b>: the server took the request and refused it (a constraint, a type, a missing object,
/// a permission). Retrying the same bytes gets the same answer, so the batch is quarantined, counted and logged,
/// and the next batch goes on.</item>
/// </list>
/// Classified by SQLSTATE class (https://www.postgresql.org/docs/current/errcodes-appendix.html); anything that is
/// not an answer from the server (sockets, timeouts, a broken or exhausted pool) is unavailable. Callers exclude
/// their own shutdown token before deciding.
/// </summary>
public static class DatabaseErrors
{
    public static bool IsUnavailable(Exception ex) => ex switch
    {
        PostgresException pg => IsNotNow(pg),
        NpgsqlException or IOException or SocketException or TimeoutException or OperationCanceledException => true,
        // Npgsql reports a connection that broke between calls as an invalid operation on it. Ours (a bug, a missing
        // embedded schema file) are not a database to wait for.
        InvalidOperationException { Source: "Npgsql" } => true,
        _ => false,
    };

    /// <summary>Either of the two: for loops whose failed pass only postpones the work (probes, maintenance, pruning).</summary>
    public static bool IsDatabaseFailure(Exception ex) => IsUnavailable(ex) || IsRejected(ex);

    /// <summary>The server answered with an error that a retry of the same request will get again.</summary>
    public static bool IsRejected(Exception ex) => ex is PostgresException pg && !IsNotNow(pg);

    /// <summary>The server's answer means "not now" rather than "not this": the one place a PostgresException is classified.</summary>
    private static bool IsNotNow(PostgresException pg) => IsUnavailableState(pg.SqlState) && !IsCitusWorkerRefusal(pg);

    /// <summary>
    /// A worker refused rows of a COPY on Citus. Citus passes the worker's message on but not its SQLSTATE: every such
    /// error arrives as XX000 from its <c>ReportCopyError</c> (seen: a check violation), which would read as "not now",
    /// and the same bytes would then be retried for ever, holding the table's buffer. Only messages PostgreSQL gives
    /// for refused data count; anything else a worker says (a shutdown, a timeout, a full disk) stays "not now".
    /// </summary>
    internal static bool IsCitusWorkerRefusal(PostgresException pg)
        => pg.SqlState == PostgresErrorCodes.InternalError
           && pg.Routine == "ReportCopyError"
           && RefusedDataMessages.Any(m => pg.MessageText.Contains(m, StringComparison.Ordinal));

    /// <summary>PostgreSQL's wording for data it refuses: constraints (23xxx), a row with no partition, values it
    /// cannot take (22xxx), and a binary COPY stream it cannot read.</summary>
    private static readonly string[] RefusedDataMessages =
    [
        " violates ", "no partition of relation", "invalid input syntax", "out of range", "value too long",
        "invalid byte sequence", "incorrect binary data format", "row field count", "COPY file signature", "invalid COPY file header",
    ];

    /// <summary>Credentials or the database name are wrong: waiting does not help, the operator must change a setting.</summary>
    public static bool IsConfigurationProblem(Exception ex)
        => ex is PostgresException pg && (pg.SqlState.StartsWith("28", StringComparison.Ordinal) || pg.SqlState == PostgresErrorCodes.InvalidCatalogName);

    /// <summary>
    /// The statement lost a race with another session: chosen as a deadlock's victim, a serialization failure, or a
    /// catalog row that another session changed at the same moment (XX000 "tuple concurrently updated"; Citus reports
    /// a distributed deadlock as 40P01 too). The transaction rolled back whole, and running it again is expected to
    /// succeed, so callers whose work is one transaction run it again at once instead of waiting out a back-off.
    /// </summary>
    public static bool IsConcurrencyConflict(PostgresException ex)
        => ex.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
           || (ex.SqlState == PostgresErrorCodes.InternalError && ex.MessageText.Contains("concurrently", StringComparison.Ordinal));

    /// <summary>SQLSTATEs that mean "not now" rather than "not this".</summary>
    internal static bool IsUnavailableState(string sqlState) => sqlState.Length == 5 && (sqlState[..2] switch
    {
        "08" => true, // connection exception (Citus reports an unreachable worker this way too)
        "53" => true, // insufficient resources: too many connections, out of memory, disk full
        "57" => true, // operator intervention: admin or crash shutdown, cannot connect now, statement timeout
        "58" => true, // system error: I/O error on the server
        "XX" => true, // internal error: the server's trouble, not our data
        _ => sqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.StatementCompletionUnknown or PostgresErrorCodes.LockNotAvailable
            or PostgresErrorCodes.ObjectInUse
            // A standby after a failover, until the new primary is found.
            or PostgresErrorCodes.ReadOnlySqlTransaction,
    });

    /// <summary>One line for logs and /health: the SQLSTATE and the server's message, or the exception's.</summary>
    public static string Describe(Exception ex) => ex switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        _ => $"{ex.GetType().Name}: {ex.Message}",
    };
}
