using System.Globalization;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>Exchange decimals stored as float8 must come back as the same decimal from their shortest round-trip text.</summary>
public sealed class DecimalRoundTripTests
{
    [TestCase("25.35190000", "25.3519")]
    [TestCase("0.00000001", "1E-08")]
    [TestCase("65000.10", "65000.1")]
    [TestCase("123456789.12345678", "123456789.12345678")]
    [TestCase("0.1", "0.1")]
    [TestCase("100", "100")]
    public void ParsedDecimal_ShortestTextIsTheExchangeValue(string exchange, string shortest)
    {
        Assert.That(FrameParser.Decimal(System.Text.Encoding.ASCII.GetBytes(exchange), false, out var value), Is.EqualTo(RejectReason.None));
        Assert.That(value.ToString("R", CultureInfo.InvariantCulture), Is.EqualTo(shortest));
        Assert.That(decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture),
            Is.EqualTo(decimal.Parse(exchange, CultureInfo.InvariantCulture)));
    }

    [Test]
    public void RandomExchangeDecimals_RoundTripExactly()
    {
        // Binance quotes at most 8 decimals and well under 15 significant digits; sweep that space.
        var random = new Random(20261122);
        for (var i = 0; i < 200_000; i++)
        {
            var decimals = random.Next(0, 9);
            var digits = random.Next(1, 16 - Math.Max(1, decimals) + decimals);
            var mantissa = random.NextInt64(1, (long)Math.Min(Math.Pow(10, Math.Min(digits, 15)), long.MaxValue));
            var exact = new decimal(mantissa) / (decimal)Math.Pow(10, decimals);
            var text = exact.ToString("F" + decimals, CultureInfo.InvariantCulture);
            Assert.That(FrameParser.Decimal(System.Text.Encoding.ASCII.GetBytes(text), false, out var value), Is.EqualTo(RejectReason.None), text);
            var back = decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
            if (back != exact)
            {
                Assert.Fail($"{text} came back as {back}");
            }
        }
    }
}
