namespace OrderBookIngestor.Exchange;

public static class SymbolNames
{
    /// <summary>Longest symbol we accept; real USD-M symbols are well under this (e.g. 1000SHIBUSDT).</summary>
    public const int MaxLength = 32;

    /// <summary>Binance symbols are upper-case ASCII letters and digits. Anything else never reaches SQL or a stream name.</summary>
    public static bool IsValid(ReadOnlySpan<char> symbol)
    {
        if (symbol.IsEmpty || symbol.Length > MaxLength)
        {
            return false;
        }

        foreach (var c in symbol)
        {
            if (!char.IsAsciiLetterUpper(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Base and quote asset guessed from the symbol's suffix, used only when exchangeInfo is unreachable.</summary>
    public static (string BaseAsset, string QuoteAsset) GuessAssets(string symbol)
    {
        foreach (var quote in (ReadOnlySpan<string>)["USDT", "USDC", "BUSD", "FDUSD", "BTC"])
        {
            if (symbol.Length > quote.Length && symbol.EndsWith(quote, StringComparison.Ordinal))
            {
                return (symbol[..^quote.Length], quote);
            }
        }

        return (symbol, "");
    }
}
