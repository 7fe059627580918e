using System.Text;

namespace OrderBookIngestor.Exchange;

/// <summary>URLs and control messages of Binance's USD-M WebSocket API.</summary>
public static class BinanceProtocol
{
    /// <summary>The combined-stream endpoint of a route; streams are added by SUBSCRIBE, never in the URL
    /// (long URLs fail past ~8 kB).</summary>
    public static Uri CombinedStreamUri(string baseUrl, BinanceRoute route)
        => new($"{baseUrl.TrimEnd('/')}/{route.PathSegment()}/stream");

    /// <summary>{"method":"SUBSCRIBE","params":[...],"id":N}. Stream names are validated ASCII, so no escaping is needed.</summary>
    public static byte[] Subscribe(IEnumerable<string> streams, long id) => Control("SUBSCRIBE", streams, id);

    public static byte[] Unsubscribe(IEnumerable<string> streams, long id) => Control("UNSUBSCRIBE", streams, id);

    private static byte[] Control(string method, IEnumerable<string> streams, long id)
    {
        var sb = new StringBuilder();
        sb.Append("{\"method\":\"").Append(method).Append("\",\"params\":[");
        var first = true;
        foreach (var s in streams)
        {
            if (!first)
            {
                sb.Append(',');
            }

            sb.Append('"').Append(s).Append('"');
            first = false;
        }

        sb.Append("],\"id\":").Append(id).Append('}');
        return Encoding.ASCII.GetBytes(sb.ToString());
    }
}
