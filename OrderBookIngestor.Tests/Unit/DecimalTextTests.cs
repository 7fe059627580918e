using System.Globalization;
using System.Text;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>The fast decimal path must give .NET's correctly rounded double, bit for bit, or step aside.</summary>
public sealed class DecimalTextTests
{
    private const NumberStyles Styles = NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign;

    [TestCase("25.35190000")]
    [TestCase("0.00000001")]
    [TestCase("-0")]
    [TestCase("-0.000")]
    [TestCase("0")]
    [TestCase("5.")]
    [TestCase(".5")]
    [TestCase("-.5")]
    [TestCase("999999999999999")]
    [TestCase("0.1")]
    [TestCase("0.3")]
    [TestCase("0.0000000000000000000001")]
    [TestCase("123456789.123456")]
    [TestCase("00000000000000000000000000000012.5")]
    public void TheFastPath_TakesPlainDecimals_AndAgreesWithDotNet(string text)
    {
        var utf8 = Encoding.ASCII.GetBytes(text);
        Assert.That(DecimalText.TryParseExact(utf8, out var fast), Is.True, text);
        AssertSame(text, fast);
    }

    [TestCase("")]
    [TestCase("-")]
    [TestCase(".")]
    [TestCase("-.")]
    [TestCase("+1")]
    [TestCase("1e5")]
    [TestCase("1.2.3")]
    [TestCase(" 1")]
    [TestCase("1 ")]
    [TestCase("--1")]
    [TestCase("1-")]
    [TestCase("1234567890123456")]
    [TestCase("123456789.12345678")]
    [TestCase("0.00000000000000000000001")]
    [TestCase("NaN")]
    [TestCase("Infinity")]
    [TestCase("１")]
    public void TheFastPath_StepsAside_ForAnythingElse(string text)
    {
        Assert.That(DecimalText.TryParseExact(Encoding.UTF8.GetBytes(text), out _), Is.False, text);
    }

    [TestCase("+1")]
    [TestCase("1234567890123456.5")]
    [TestCase("123456789.12345678")]
    [TestCase("1.0000000000000000000001")]
    [TestCase("0.00000000000000000000001")]
    [TestCase("1e5")]
    [TestCase("")]
    [TestCase("1.2.3")]
    [TestCase("NaN")]
    public void TheWholeParse_AnswersAsDotNetDoes(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var expected = double.TryParse(utf8, Styles, CultureInfo.InvariantCulture, out var reference);
        Assert.That(DecimalText.TryParse(utf8, out var value), Is.EqualTo(expected), text);
        if (expected)
        {
            Assert.That(BitConverter.DoubleToInt64Bits(value), Is.EqualTo(BitConverter.DoubleToInt64Bits(reference)), text);
        }
    }

    [Test]
    public void RandomDecimals_GiveDotNetsDouble_BitForBit()
    {
        // Every length of mantissa and scale around the fast path's limits, with and without sign and leading zeros.
        var random = new Random(20261203);
        var fastTaken = 0;
        for (var i = 0; i < 300_000; i++)
        {
            var text = new StringBuilder();
            if (random.Next(4) == 0)
            {
                text.Append('-');
            }

            text.Append('0', random.Next(3) == 0 ? random.Next(1, 4) : 0);
            var whole = random.Next(0, 18);
            for (var d = 0; d < whole; d++)
            {
                text.Append((char)('0' + random.Next(10)));
            }

            if (random.Next(5) > 0)
            {
                text.Append('.');
                var fraction = random.Next(0, 26);
                for (var d = 0; d < fraction; d++)
                {
                    text.Append((char)('0' + random.Next(10)));
                }
            }

            var utf8 = Encoding.ASCII.GetBytes(text.ToString());
            var expected = double.TryParse(utf8, Styles, CultureInfo.InvariantCulture, out var reference);
            Assert.That(DecimalText.TryParse(utf8, out var value), Is.EqualTo(expected), text.ToString());
            if (expected && BitConverter.DoubleToInt64Bits(value) != BitConverter.DoubleToInt64Bits(reference))
            {
                Assert.Fail($"{text} gave {value:R}, .NET {reference:R}");
            }

            if (DecimalText.TryParseExact(utf8, out _))
            {
                fastTaken++;
            }
        }

        // The sweep must exercise the fast path, not only the fallback.
        Assert.That(fastTaken, Is.GreaterThan(100_000));
    }

    [Test]
    public void RandomBytes_GiveDotNetsAnswer()
    {
        var random = new Random(7);
        var alphabet = "0123456789.-+eE ,x"u8.ToArray();
        for (var i = 0; i < 200_000; i++)
        {
            var utf8 = new byte[random.Next(0, 12)];
            for (var b = 0; b < utf8.Length; b++)
            {
                utf8[b] = alphabet[random.Next(alphabet.Length)];
            }

            var expected = double.TryParse(utf8, Styles, CultureInfo.InvariantCulture, out var reference);
            var text = Encoding.ASCII.GetString(utf8);
            Assert.That(DecimalText.TryParse(utf8, out var value), Is.EqualTo(expected), text);
            if (expected && BitConverter.DoubleToInt64Bits(value) != BitConverter.DoubleToInt64Bits(reference))
            {
                Assert.Fail($"{text} gave {value:R}, .NET {reference:R}");
            }
        }
    }

    private static void AssertSame(string text, double fast)
    {
        Assert.That(double.TryParse(Encoding.ASCII.GetBytes(text), Styles, CultureInfo.InvariantCulture, out var reference), Is.True, text);
        Assert.That(BitConverter.DoubleToInt64Bits(fast), Is.EqualTo(BitConverter.DoubleToInt64Bits(reference)), text);
    }
}
