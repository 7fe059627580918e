using System.Net.Sockets;
using Npgsql;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>One storage failure policy: "not now" is retried and spooled, "not this" is quarantined.</summary>
public sealed class DatabaseErrorsTests
{
    private static PostgresException Pg(string sqlState) => new("message", "ERROR", "ERROR", sqlState);

    [TestCase("08006", Description = "connection failure (also Citus's unreachable worker)")]
    [TestCase("08001")]
    [TestCase("53300", Description = "too many connections")]
    [TestCase("53100", Description = "disk full")]
    [TestCase("57P01", Description = "admin shutdown")]
    [TestCase("57P03", Description = "cannot connect now (starting up)")]
    [TestCase("57014", Description = "statement timeout")]
    [TestCase("40001", Description = "serialization failure")]
    [TestCase("40P01", Description = "deadlock")]
    [TestCase("55P03", Description = "lock not available")]
    [TestCase("25006", Description = "read-only transaction: a standby after a failover")]
    [TestCase("58030", Description = "I/O error on the server")]
    [TestCase("XX000", Description = "internal error")]
    public void ServerTrouble_IsUnavailable_NotRejected(string sqlState)
    {
        Assert.That(DatabaseErrors.IsUnavailable(Pg(sqlState)), Is.True);
        Assert.That(DatabaseErrors.IsRejected(Pg(sqlState)), Is.False);
    }

    [TestCase("23514", Description = "check violation, or no partition for the row")]
    [TestCase("23502", Description = "not null violation")]
    [TestCase("22P02", Description = "invalid text representation")]
    [TestCase("22003", Description = "numeric value out of range")]
    [TestCase("42P01", Description = "undefined table")]
    [TestCase("42501", Description = "insufficient privilege")]
    [TestCase("0A000", Description = "feature not supported")]
    [TestCase("P0001", Description = "raised by a function")]
    [TestCase("28P01", Description = "wrong password")]
    [TestCase("3D000", Description = "no such database")]
    public void ARefusal_IsRejected_NotUnavailable(string sqlState)
    {
        Assert.That(DatabaseErrors.IsRejected(Pg(sqlState)), Is.True);
        Assert.That(DatabaseErrors.IsUnavailable(Pg(sqlState)), Is.False);
    }

    [TestCase("new row for relation \"book_ticker_default_102059\" violates check constraint \"test_refuse\"", true)]
    [TestCase("null value in column \"bid\" of relation \"book_ticker_102010\" violates not-null constraint", true)]
    [TestCase("no partition of relation \"trades_102011\" found for row", true)]
    [TestCase("incorrect binary data format", true)]
    [TestCase("canceling statement due to statement timeout", false)]
    [TestCase("could not extend file \"base/16384/16385\": No space left on device", false)]
    [TestCase("terminating connection due to administrator command", false)]
    public void CitusWorkersAnswerToACopy_IsARefusalOnlyWhenItRefusesTheData(string message, bool refused)
    {
        // Citus's ReportCopyError passes a worker's message on as XX000, without the worker's SQLSTATE.
        var citus = new PostgresException(message, "ERROR", "ERROR", "XX000", routine: "ReportCopyError");
        Assert.That((DatabaseErrors.IsRejected(citus), DatabaseErrors.IsUnavailable(citus)), Is.EqualTo((refused, !refused)));
        // The same words as XX000 from anywhere else are the server's own trouble.
        var elsewhere = new PostgresException(message, "ERROR", "ERROR", "XX000", routine: "ExecConstraints");
        Assert.That((DatabaseErrors.IsRejected(elsewhere), DatabaseErrors.IsUnavailable(elsewhere)), Is.EqualTo((false, true)));
    }

    [Test]
    public void NoAnswerFromTheServer_IsUnavailable()
    {
        foreach (var ex in new Exception[] { new NpgsqlException("broken"), new IOException(), new SocketException(), new TimeoutException(), new OperationCanceledException() })
        {
            Assert.That((DatabaseErrors.IsUnavailable(ex), DatabaseErrors.IsRejected(ex)), Is.EqualTo((true, false)), ex.GetType().Name);
        }
    }

    [Test]
    public void AnInvalidOperationOfOurOwn_IsNeitherUnavailableNorRefused()
    {
        // A bug or a missing embedded file must fail the start, not be waited for as if the database were down.
        var ours = new InvalidOperationException("Embedded schema file schema/x.sql is missing from the binary.");
        Assert.That((DatabaseErrors.IsUnavailable(ours), DatabaseErrors.IsRejected(ours)), Is.EqualTo((false, false)));
    }

    [Test]
    public void CredentialsAndTheDatabaseName_AreConfigurationProblems()
    {
        Assert.That(DatabaseErrors.IsConfigurationProblem(Pg("28P01")), Is.True);
        Assert.That(DatabaseErrors.IsConfigurationProblem(Pg("28000")), Is.True);
        Assert.That(DatabaseErrors.IsConfigurationProblem(Pg("3D000")), Is.True);
        Assert.That(DatabaseErrors.IsConfigurationProblem(Pg("23514")), Is.False);
        Assert.That(DatabaseErrors.Describe(Pg("23514")), Is.EqualTo("23514: message"));
    }

    [TestCase("XX000", "tuple concurrently updated", null, true)]
    [TestCase("XX000", "could not open relation", null, false)]
    [TestCase("40001", "could not serialize access", null, true)]
    [TestCase("40P01", "deadlock detected", null, true)]
    [TestCase("23505", "duplicate key value", "pg_authid_rolname_index", true)]
    [TestCase("23505", "duplicate key value", "schema_migrations_pkey", false)]
    [TestCase("42501", "permission denied", null, false)]
    public void Migration_IsRunAgainOnlyWhenItMetAnotherSessionsCatalogChange(string sqlState, string message, string? constraint, bool again)
    {
        var ex = new PostgresException(message, "ERROR", "ERROR", sqlState, constraintName: constraint);
        Assert.That(SchemaMigrator.IsConcurrentCatalogChange(ex), Is.EqualTo(again));
    }

    [TestCase("40P01", "deadlock detected", true)]
    [TestCase("40P01", "canceling the transaction since it was involved in a distributed deadlock", true)]
    [TestCase("40001", "could not serialize access", true)]
    [TestCase("XX000", "tuple concurrently updated", true)]
    [TestCase("XX000", "could not open relation", false)]
    [TestCase("55P03", "canceling statement due to lock timeout", false)]
    [TestCase("23505", "duplicate key value", false)]
    public void AConcurrencyConflict_IsALostRace_NotAnyFailure(string sqlState, string message, bool conflict)
        => Assert.That(DatabaseErrors.IsConcurrencyConflict(new PostgresException(message, "ERROR", "ERROR", sqlState)), Is.EqualTo(conflict));
}
