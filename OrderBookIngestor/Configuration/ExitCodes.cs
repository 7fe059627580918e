namespace OrderBookIngestor.Configuration;

/// <summary>
/// What the process tells systemd and scripts. A setting the operator must change (a bad flag or value, a wrong
/// password, a missing database, a storage tier the server cannot give, a port in use) is 2, like every bad setting;
/// any other failure is 1. A database that cannot be reached at start is not a failure: it is waited for.
/// </summary>
public static class ExitCodes
{
    public const int Success = 0;

    public const int Failure = 1;

    public const int Configuration = 2;
}
