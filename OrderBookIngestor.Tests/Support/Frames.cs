using System.Text;

namespace OrderBookIngestor.Tests.Support;

/// <summary>Exchange-shaped frames, taken from Binance's documentation examples.</summary>
public static class Frames
{
    public const string BookTickerCombined =
        """{"stream":"bnbusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}""";

    public const string BookTickerRaw =
        """{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}""";

    public const string AggTradeCombined =
        """{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}}""";

    public const string DepthUpdate =
        """{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1571889248277,"T":1571889248276,"s":"BTCUSDT","U":390497796,"u":390497878,"pu":390497794,"b":[["7403.89","0.002"],["7403.90","3.906"]],"a":[["7405.96","3.340"]]}}""";

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
