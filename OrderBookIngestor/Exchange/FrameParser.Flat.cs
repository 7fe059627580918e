namespace OrderBookIngestor.Exchange;

/// <summary>
/// The flat scanner: Binance's bookTicker, aggTrade and markPriceUpdate frames, raw or combined, read without
/// Utf8JsonReader. It takes only a strict subset of JSON: one object, or {"stream":…,"data":{…}}, with no
/// whitespace, whose values are printable-ASCII strings without escapes, integers of up to 18 digits, and true or
/// false. Each name and value goes to the same field table as the general reader's (<see cref="EventFields.Take"/>),
/// so a frame it takes yields exactly what the general reader would. Anything else (a list or a nested object,
/// an escape, whitespace, a fraction, null, a control reply, a byte outside printable ASCII, a frame cut short)
/// makes it give up having decided nothing, and the frame goes through Utf8JsonReader, which judges it.
/// At 20,000 msg/s the general reader was ~18 % of the daemon's samples (issue 17).
/// </summary>
public sealed partial class FrameParser
{
    private const int MaxIntegerDigits = 18;

    /// <returns>False when the frame is not in the flat shape; <paramref name="fields"/> is then to be discarded.</returns>
    private static bool TryScanFlat(ReadOnlySpan<byte> frame, ref EventFields fields)
    {
        var pos = 0;
        return ScanObject(frame, ref pos, ref fields, top: true) && pos == frame.Length;
    }

    private static bool ScanObject(ReadOnlySpan<byte> s, scoped ref int pos, ref EventFields fields, bool top)
    {
        if (pos >= s.Length || s[pos] != (byte)'{')
        {
            return false;
        }

        pos++;
        while (true)
        {
            if (!ScanText(s, ref pos, out var name) || pos >= s.Length || s[pos] != (byte)':')
            {
                return false;
            }

            pos++;
            if (top && name.SequenceEqual("data"u8))
            {
                if (!ScanObject(s, ref pos, ref fields, top: false))
                {
                    return false;
                }
            }
            else
            {
                if (top && (name.SequenceEqual("result"u8) || name.SequenceEqual("error"u8) || name.SequenceEqual("id"u8)))
                {
                    // A control reply: the general reader's business.
                    return false;
                }

                if (!ScanValue(s, ref pos, out var value))
                {
                    return false;
                }

                // "stream" is one of the names the table ignores, as the general reader skips it.
                fields.Take(name, value);
            }

            if (pos >= s.Length)
            {
                return false;
            }

            var next = s[pos++];
            if (next == (byte)'}')
            {
                return true;
            }

            if (next != (byte)',')
            {
                return false;
            }
        }
    }

    private static bool ScanValue(ReadOnlySpan<byte> s, scoped ref int pos, out Scalar value)
    {
        value = default;
        if (pos >= s.Length)
        {
            return false;
        }

        switch (s[pos])
        {
            case (byte)'"':
                if (!ScanText(s, ref pos, out var text))
                {
                    return false;
                }

                value = new Scalar(ScalarKind.Text, text);
                return true;
            case (byte)'t' when s[pos..].StartsWith("true"u8):
                pos += 4;
                value = new Scalar(ScalarKind.True);
                return true;
            case (byte)'f' when s[pos..].StartsWith("false"u8):
                pos += 5;
                value = new Scalar(ScalarKind.False);
                return true;
            default:
                return ScanInteger(s, ref pos, out value);
        }
    }

    /// <summary>-?(0|[1-9][0-9]*) of at most 18 digits (so it cannot overflow). What follows is the caller's to
    /// check: a fraction or an exponent is not a ',' or a '}', and ends the scan.</summary>
    private static bool ScanInteger(ReadOnlySpan<byte> s, scoped ref int pos, out Scalar value)
    {
        value = default;
        var negative = s[pos] == (byte)'-';
        var first = negative ? pos + 1 : pos;
        var end = first;
        while (end < s.Length && (uint)(s[end] - (byte)'0') <= 9)
        {
            end++;
        }

        var digits = end - first;
        if (digits == 0 || digits > MaxIntegerDigits || (digits > 1 && s[first] == (byte)'0'))
        {
            return false;
        }

        long magnitude = 0;
        for (var i = first; i < end; i++)
        {
            magnitude = (magnitude * 10) + (s[i] - (byte)'0');
        }

        pos = end;
        value = new Scalar(ScalarKind.Integer, integer: negative ? -magnitude : magnitude);
        return true;
    }

    /// <summary>A string of printable ASCII without escapes; its bytes without the quotes.</summary>
    private static bool ScanText(ReadOnlySpan<byte> s, scoped ref int pos, out ReadOnlySpan<byte> text)
    {
        text = default;
        if (pos >= s.Length || s[pos] != (byte)'"')
        {
            return false;
        }

        var start = pos + 1;
        for (var i = start; i < s.Length; i++)
        {
            var b = s[i];
            if (b == (byte)'"')
            {
                text = s[start..i];
                pos = i + 1;
                return true;
            }

            if (b is < 0x20 or > 0x7E or (byte)'\\')
            {
                return false;
            }
        }

        return false;
    }
}
