namespace OrderBookIngestor.Exchange;

/// <summary>One entry of /fapi/v1/exchangeInfo's "symbols", reduced to what we store and filter on.</summary>
public sealed record SymbolInfo(string Symbol, string BaseAsset, string QuoteAsset, string Status, string ContractType)
{
    /// <summary>What --symbols ALL records: TRADING USDT-margined perpetuals.</summary>
    public bool IsTradingUsdtPerpetual =>
        Status == "TRADING" && ContractType == "PERPETUAL" && QuoteAsset == "USDT";
}
