using System.Globalization;

namespace OrderBookIngestor.Simulator;

/// <summary>One listed symbol of the fake exchange, with the scale its prices and quantities are quoted in.</summary>
public sealed record SimSymbol(int Index, string Symbol, string BaseAsset, long StartPriceTicks, int PriceDecimals, int QtyDecimals);

public static class SymbolUniverse
{
    private static readonly (string Base, double Price, int PriceDecimals, int QtyDecimals)[] Known =
    [
        ("BTC", 65000.1, 1, 3), ("ETH", 3400.25, 2, 3), ("BNB", 580.12, 2, 2), ("SOL", 145.678, 3, 2),
        ("XRP", 0.5231, 4, 1), ("DOGE", 0.123456, 6, 0), ("ADA", 0.4512, 4, 0), ("AVAX", 35.123, 3, 1),
        ("LINK", 14.321, 3, 2), ("DOT", 6.789, 3, 1), ("TRX", 0.12345, 5, 0), ("LTC", 82.45, 2, 3),
        ("1000SHIB", 0.024567, 6, 0), ("1000PEPE", 0.0112345, 7, 0), ("ARB", 0.8765, 4, 1), ("OP", 1.8765, 4, 1),
        ("SUI", 1.2345, 4, 1), ("APT", 8.7654, 4, 2), ("NEAR", 5.432, 3, 1), ("ATOM", 7.891, 3, 2),
    ];

    public static IReadOnlyList<SimSymbol> Create(int count)
    {
        var list = new List<SimSymbol>(count);
        for (var i = 0; i < count; i++)
        {
            if (i < Known.Length)
            {
                var k = Known[i];
                list.Add(new SimSymbol(i, k.Base + "USDT", k.Base, (long)Math.Round(k.Price * Math.Pow(10, k.PriceDecimals)), k.PriceDecimals, k.QtyDecimals));
            }
            else
            {
                var b = "S" + i.ToString("D4", CultureInfo.InvariantCulture);
                var decimals = 2 + (i % 7);
                list.Add(new SimSymbol(i, b + "USDT", b, 1000 + (i * 7919 % 90000), decimals, i % 4));
            }
        }

        return list;
    }

    /// <summary>Ticks as a fixed-point decimal string, keeping trailing zeros as Binance does ("65000.10").</summary>
    public static string Fixed(long ticks, int decimals)
    {
        // One formatter for both: the frames' UTF-8 and the strings the depth snapshot and diffs still build.
        Span<byte> text = stackalloc byte[48];
        new FixedText(ticks, decimals).TryFormat(text, out var written, default, CultureInfo.InvariantCulture);
        return System.Text.Encoding.ASCII.GetString(text[..written]);
    }

    /// <summary>ticks × 10^-decimals, exactly (the same value as dividing, without decimal division per field).</summary>
    public static decimal ToDecimal(long ticks, int decimals)
    {
        var magnitude = ticks == long.MinValue ? (ulong)long.MaxValue + 1 : (ulong)Math.Abs(ticks);
        return new decimal((int)(uint)magnitude, (int)(uint)(magnitude >> 32), 0, ticks < 0, checked((byte)decimals));
    }

    /// <summary>Ticks as Binance's fixed-point text, written straight into a UTF-8 frame (no string on the way).</summary>
    public readonly struct FixedText(long ticks, int decimals) : IUtf8SpanFormattable
    {
        public bool TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
        {
            bytesWritten = 0;
            var scale = 1L;
            for (var i = 0; i < decimals; i++)
            {
                scale *= 10;
            }

            if (!(ticks / scale).TryFormat(utf8Destination, out var whole, default, CultureInfo.InvariantCulture))
            {
                return false;
            }

            if (decimals == 0)
            {
                bytesWritten = whole;
                return true;
            }

            if (utf8Destination.Length < whole + 1 + decimals)
            {
                return false;
            }

            utf8Destination[whole] = (byte)'.';
            var frac = ticks % scale;
            for (var i = whole + decimals; i > whole; i--)
            {
                utf8Destination[i] = (byte)('0' + (frac % 10));
                frac /= 10;
            }

            bytesWritten = whole + 1 + decimals;
            return true;
        }
    }
}
