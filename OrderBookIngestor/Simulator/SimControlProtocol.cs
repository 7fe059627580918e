using System.Buffers;
using System.Text.Json;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// The exchange's WebSocket control messages: SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS, answered with
/// {"result":...,"id":N}, and {"error":{"code":2|3,"msg":...},"id":N} for unknown methods or streams and bad JSON.
/// </summary>
internal sealed class SimControlProtocol
{
    private readonly SimulatedMarket _market;
    private readonly SimSubscribers _subscribers;

    public SimControlProtocol(SimulatedMarket market, SimSubscribers subscribers)
    {
        _market = market;
        _subscribers = subscribers;
    }

    /// <summary>Applies one client message to <paramref name="c"/> and returns the reply's UTF-8 JSON.</summary>
    public byte[] Handle(SimConnection c, ReadOnlyMemory<byte> message)
    {
        long id = 0;
        try
        {
            using var doc = JsonDocument.Parse(message);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Error(2, "Invalid request: unknown method", id);
            }

            if (root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.Number && idElement.TryGetInt64(out var n))
            {
                id = n;
            }

            var method = root.TryGetProperty("method", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            var streams = root.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Array
                ? p.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : "").ToList()
                : [];
            switch (method)
            {
                case "SUBSCRIBE":
                    if (streams.FirstOrDefault(s => !_market.IsKnownStream(s)) is { } unknown)
                    {
                        return Error(2, $"Invalid request: unknown stream {unknown}", id);
                    }

                    _subscribers.Subscribe(c, streams);
                    return Result(null, id);
                case "UNSUBSCRIBE":
                    _subscribers.Unsubscribe(c, streams);
                    return Result(null, id);
                case "LIST_SUBSCRIPTIONS":
                    return Result(c.Subscriptions(), id);
                default:
                    return Error(2, "Invalid request: unknown method", id);
            }
        }
        catch (JsonException)
        {
            return Error(3, "Invalid JSON: expected value at line 1 column 1", id);
        }
    }

    private static byte[] Result(string[]? list, long id) => Write(w =>
    {
        if (list is null)
        {
            w.WriteNull("result");
        }
        else
        {
            w.WriteStartArray("result");
            foreach (var s in list)
            {
                w.WriteStringValue(s);
            }

            w.WriteEndArray();
        }

        w.WriteNumber("id", id);
    });

    private static byte[] Error(int code, string message, long id) => Write(w =>
    {
        w.WriteStartObject("error");
        w.WriteNumber("code", code);
        w.WriteString("msg", message);
        w.WriteEndObject();
        w.WriteNumber("id", id);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
