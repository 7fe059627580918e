using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using OrderBookIngestor.Configuration;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Who may call the read API. On a loopback address it is open (unless a token is set, which is then required);
/// on any other address a bearer token is required, and the daemon refuses to start without one. The token comes
/// from ORDERBOOK_API_TOKEN or the systemd credential orderbook-api-token, is never logged, and is compared in
/// constant time (as SHA-256 digests, so its length does not show either).
/// </summary>
public sealed class ReadApiAccess
{
    public const string TokenVariable = "ORDERBOOK_API_TOKEN";

    public const string CredentialName = "orderbook-api-token";

    private readonly byte[]? _tokenDigest;

    private ReadApiAccess(bool enabled, string? token)
    {
        Enabled = enabled;
        _tokenDigest = token is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>False: the data endpoints are not mapped (ReadApi is off, or there is no HTTP listener).</summary>
    public bool Enabled { get; }

    public bool RequiresToken => _tokenDigest is not null;

    public static ReadApiAccess Disabled { get; } = new(false, null);

    /// <summary>Open, for tests and loopback use.</summary>
    public static ReadApiAccess Open { get; } = new(true, null);

    public static ReadApiAccess WithToken(string token) => new(true, token);

    /// <exception cref="ConfigurationException">The listener is not on loopback and no token is configured.</exception>
    public static ReadApiAccess Resolve(IngestorOptions options, Func<string, string?> environment)
    {
        if (!options.ReadApi || string.Equals(options.Http, "none", StringComparison.OrdinalIgnoreCase)
            || !OptionsValidator.TryParseHostPort(options.Http, out var host, out _))
        {
            return Disabled;
        }

        var token = environment(TokenVariable);
        var credentials = environment("CREDENTIALS_DIRECTORY");
        if (string.IsNullOrEmpty(token) && !string.IsNullOrEmpty(credentials) && File.Exists(Path.Combine(credentials, CredentialName)))
        {
            token = File.ReadAllText(Path.Combine(credentials, CredentialName)).Trim();
        }

        if (string.IsNullOrEmpty(token))
        {
            if (!IsLoopback(host))
            {
                throw new ConfigurationException(
                    $"Http: {host} is not a loopback address, so the read API (/symbols, /data, /stats) needs a bearer token: set {TokenVariable} " +
                    $"or the systemd credential {CredentialName}, or set ReadApi to false. /health and /metrics need none.");
            }

            return Open;
        }

        return new ReadApiAccess(true, token);
    }

    public static bool IsLoopback(string host)
        => string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>True when no token is needed, or the request carries it as "Authorization: Bearer &lt;token&gt;".</summary>
    public bool Allows(HttpRequest request)
    {
        if (_tokenDigest is null)
        {
            return true;
        }

        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _tokenDigest);
    }
}
