namespace OrderBookIngestor.Configuration;

/// <summary>Invalid configuration: the message names the setting and what to change. Exits non-zero before anything connects.</summary>
public sealed class ConfigurationException : Exception
{
    public ConfigurationException(string message) : base(message) { }

    public ConfigurationException(string message, Exception inner) : base(message, inner) { }

    public ConfigurationException() { }
}
