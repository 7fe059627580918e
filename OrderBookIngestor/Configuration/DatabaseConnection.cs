using Npgsql;

namespace OrderBookIngestor.Configuration;

/// <summary>Accepts an Npgsql connection string or a postgresql:// URL, and redacts either for display.</summary>
public static class DatabaseConnection
{
    public static string ToNpgsql(string database)
    {
        if (database.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || database.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return FromUrl(database);
        }

        try
        {
            return new NpgsqlConnectionStringBuilder(database).ConnectionString;
        }
        catch (ArgumentException ex)
        {
            // The message of ArgumentException can quote the string; never echo it (it may hold a password).
            throw new ConfigurationException($"Database: not a valid Npgsql connection string or postgresql:// URL ({ex.GetType().Name}).", ex);
        }
    }

    private static string FromUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConfigurationException("Database: the postgresql:// URL could not be parsed; expected postgresql://user:password@host:port/dbname.");
        }

        var b = new NpgsqlConnectionStringBuilder { Host = uri.Host };
        if (uri.Port > 0)
        {
            b.Port = uri.Port;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        var db = uri.AbsolutePath.Trim('/');
        if (db.Length > 0)
        {
            b.Database = Uri.UnescapeDataString(db);
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            // libpq spellings that Npgsql names differently.
            var keyword = key switch { "sslmode" => "SSL Mode", "sslrootcert" => "Root Certificate", "application_name" => "Application Name", _ => key };
            if (!b.ContainsKey(keyword))
            {
                throw new ConfigurationException($"Database: URL parameter '{key}' is not understood.");
            }

            try
            {
                b[keyword] = value;
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                // The value is not echoed: a URL parameter may carry a secret.
                throw new ConfigurationException(key == "sslmode"
                    ? "Database: URL parameter 'sslmode' must be disable, allow, prefer, require, verify-ca or verify-full."
                    : $"Database: URL parameter '{key}' has a value that is not valid for it.", ex);
            }
        }

        return b.ConnectionString;
    }

    /// <summary>The connection described without its password, for logs, /health and error messages.</summary>
    public static string Redact(string? database)
    {
        if (string.IsNullOrEmpty(database))
        {
            return "(none)";
        }

        try
        {
            var b = new NpgsqlConnectionStringBuilder(ToNpgsql(database));
            return $"host={b.Host} port={b.Port} database={b.Database} user={b.Username}";
        }
        catch (ConfigurationException)
        {
            return "(unparseable connection string)";
        }
    }
}
