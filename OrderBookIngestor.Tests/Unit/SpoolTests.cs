using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Unit;

public sealed class SpoolTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("obi-spool-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private static byte[] Payload(int n, byte fill) => Enumerable.Repeat(fill, n).ToArray();

    [Test]
    public void Crc32_MatchesTheStandardCheckValue()
        => Assert.That(Crc32.Compute("123456789"u8), Is.EqualTo(0xCBF43926u));

    [Test]
    public void Spool_RecordsComeBackInOrderWithTheirIdsOnceSealed()
    {
        using var spool = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance);
        Guid a = Guid.NewGuid(), b = Guid.NewGuid();
        Assert.That(spool.TryAppend(1, a, 10, Payload(100, 7)), Is.True);
        Assert.That(spool.TryAppend(2, b, 20, Payload(50, 9)), Is.True);
        Assert.That(spool.Segments(), Is.Empty, "the segment being written is not replayed yet");
        spool.Seal();
        var records = spool.Read(spool.Segments().Single()).ToList();
        Assert.That(records.Select(r => (r.TableId, r.BatchId, r.Rows, r.Payload.Length)), Is.EqualTo(new[] { ((byte)1, a, 10, 100), ((byte)2, b, 20, 50) }));
        Assert.That(records[1].Payload, Is.All.EqualTo(9));
        spool.Delete(spool.Segments().Single());
        Assert.That(spool.IsEmpty, Is.True);
    }

    [Test]
    public void Spool_ATornTailIsSkippedAndCounted_TheRecordsBeforeItSurvive()
    {
        string segment;
        using (var spool = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance))
        {
            spool.TryAppend(1, Guid.NewGuid(), 1, Payload(64, 1));
            spool.TryAppend(1, Guid.NewGuid(), 1, Payload(64, 2));
            spool.Seal();
            segment = spool.Segments().Single();
        }

        // A crash in the middle of the second write.
        using (var f = new FileStream(segment, FileMode.Open))
        {
            f.SetLength(f.Length - 10);
        }

        using var reopened = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance);
        var damage = new List<SpoolDamage>();
        var records = reopened.Read(segment, damage.Add).ToList();
        Assert.That(records, Has.Count.EqualTo(1));
        Assert.That(records[0].Payload, Is.All.EqualTo(1));
        Assert.That(reopened.CorruptRecords, Is.EqualTo(1));
        Assert.That(damage.Single().Offset, Is.EqualTo(SpoolRecord.HeaderBytes + 64), "the damage starts where the torn record does");
        Assert.That(damage.Single().Bytes, Is.EqualTo(SpoolRecord.HeaderBytes + 64 - 10), "and runs to the end of the file");
        Assert.That(damage.Single().Problem, Is.EqualTo("torn payload"));
    }

    [Test]
    public void Spool_AFlippedByteFailsTheChecksum()
    {
        using var spool = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance);
        spool.TryAppend(1, Guid.NewGuid(), 1, Payload(64, 1));
        spool.TryAppend(1, Guid.NewGuid(), 1, Payload(64, 2));
        spool.TryAppend(1, Guid.NewGuid(), 1, Payload(64, 3));
        spool.Seal();
        var segment = spool.Segments().Single();
        var bytes = File.ReadAllBytes(segment);
        bytes[97 + 33 + 5] ^= 0xFF; // inside the second record's payload
        File.WriteAllBytes(segment, bytes);
        var damage = new List<SpoolDamage>();
        var records = spool.Read(segment, damage.Add).ToList();
        Assert.That(records.Select(r => r.Payload[0]), Is.EqualTo(new byte[] { 1, 3 }), "the damaged record is skipped; the one after it is read on");
        Assert.That(spool.CorruptRecords, Is.EqualTo(1));
        var d = damage.Single();
        Assert.That((d.Offset, d.Bytes, d.Problem), Is.EqualTo((97L, 97L, "checksum mismatch")));
        Assert.That((d.TableId, d.Rows, d.SuspectPayload!.Length), Is.EqualTo(((byte?)1, (int?)1, 64)), "what the damaged record claimed, for the gap ledger");
    }

    [Test]
    public void Spool_TwoDamagedRecordsSideBySide_AreReportedOneByOne_WithWhatEachClaimed()
    {
        using var spool = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance);
        for (byte i = 1; i <= 4; i++)
        {
            spool.TryAppend(i, Guid.NewGuid(), i * 10, Payload(64, i));
        }

        spool.Seal();
        var segment = spool.Segments().Single();
        var bytes = File.ReadAllBytes(segment);
        bytes[97 + 40] ^= 0x01;
        bytes[(2 * 97) + 40] ^= 0x01;
        File.WriteAllBytes(segment, bytes);
        var damage = new List<SpoolDamage>();
        Assert.That(spool.Read(segment, damage.Add).Select(r => r.TableId), Is.EqualTo(new byte[] { 1, 4 }));
        Assert.That(damage.Select(d => (d.Offset, d.Bytes, d.TableId, d.Rows)), Is.EqualTo(new[] { (97L, 97L, (byte?)2, (int?)20), (194L, 97L, (byte?)3, (int?)30) }));
        Assert.That((spool.CorruptRecords, spool.CorruptRows), Is.EqualTo((2L, 50L)));
    }

    [Test]
    public void Spool_ADamagedHeader_IsSkippedToTheNextRecordThatChecksOut()
    {
        using var spool = new Spool(_dir, 1 << 20, 1 << 20, NullLogger.Instance);
        for (byte i = 1; i <= 4; i++)
        {
            spool.TryAppend(1, Guid.NewGuid(), i, Payload(200, i));
        }

        spool.Seal();
        var segment = spool.Segments().Single();
        var bytes = File.ReadAllBytes(segment);
        bytes[233 + 4] ^= 0x40; // the second record's length field: its end, and where the third starts, are unknown
        bytes[(2 * 233) + 1] ^= 0x01; // and the third record's magic
        File.WriteAllBytes(segment, bytes);
        var damage = new List<SpoolDamage>();
        var records = spool.Read(segment, damage.Add).ToList();
        Assert.That(records.Select(r => r.Rows), Is.EqualTo(new[] { 1, 4 }));
        Assert.That(damage.Select(x => (x.Offset, x.Bytes)), Is.EqualTo(new[] { (233L, 2 * 233L) }), "one stretch, from the bad record to the next good one");
    }

    [Test]
    public void Spool_RefusesPastItsCap()
    {
        using var spool = new Spool(_dir, maxBytes: 300, segmentBytes: 1 << 20, NullLogger.Instance);
        Assert.That(spool.TryAppend(1, Guid.NewGuid(), 1, Payload(100, 1)), Is.True);
        Assert.That(spool.TryAppend(1, Guid.NewGuid(), 1, Payload(100, 1)), Is.True);
        Assert.That(spool.TryAppend(1, Guid.NewGuid(), 1, Payload(100, 1)), Is.False);
        Assert.That(spool.Bytes, Is.EqualTo(2 * 133));
    }

    [Test]
    public void Spool_StartsNewSegmentsPastTheSegmentSize()
    {
        // A segment rolls over once it has reached the size (it may pass it by one record): 133-byte records, 100-byte segments.
        using var spool = new Spool(_dir, 1 << 20, segmentBytes: 100, NullLogger.Instance);
        for (var i = 0; i < 4; i++)
        {
            spool.TryAppend(1, Guid.NewGuid(), 1, Payload(100, (byte)i));
        }

        spool.Seal();
        Assert.That(spool.Segments(), Has.Count.EqualTo(4));
        Assert.That(spool.Segments().Select(s => spool.Read(s).Single().Payload[0]), Is.EqualTo(new byte[] { 0, 1, 2, 3 }), "segments sort in write order");
    }
}
