using System.Text.RegularExpressions;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>
/// The namespace graph as a rule in code (ARCHITECTURE.md draws it): dependencies follow the data, from the
/// wire format to storage, and Observability and Resilience are leaves that others write into. Every
/// reference from one folder's code to another folder's namespace (a using, or a qualified name) must be
/// allowed below.
/// </summary>
public sealed partial class DependencyRuleTests
{
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Resilience"] = [],
        ["Observability"] = [],
        ["Exchange"] = ["Observability", "Resilience"],
        ["Configuration"] = ["Exchange", "Observability"],
        ["Feeds"] = ["Exchange", "Configuration", "Observability", "Resilience"],
        ["Pipeline"] = ["Feeds", "Exchange", "Configuration", "Observability", "Resilience"],
        // Books sits beside Pipeline, behind the interface Pipeline owns: it may see Pipeline, not the reverse.
        ["Books"] = ["Pipeline", "Feeds", "Exchange", "Configuration", "Observability", "Resilience"],
        ["Storage"] = ["Pipeline", "Feeds", "Exchange", "Configuration", "Observability", "Resilience"],
        ["Simulator"] = ["Exchange", "Observability"],
        ["Hosting"] = ["Storage", "Books", "Pipeline", "Feeds", "Exchange", "Configuration", "Observability", "Resilience"],
        // Export reads what the read API reads (its column lists), from outside the daemon.
        ["Export"] = ["Hosting", "Configuration", "Observability"],
        ["Cli"] = ["Export", "Hosting", "Simulator", "Storage", "Books", "Pipeline", "Feeds", "Exchange", "Configuration", "Observability", "Resilience"],
    };

    [Test]
    public void EveryReferenceBetweenFolders_FollowsTheDependencyRule()
    {
        var forbidden = Violations().Order().ToList();
        Assert.That(forbidden, Is.Empty, "forbidden references (see ARCHITECTURE.md, 'Dependencies'):\n" + string.Join("\n", forbidden));
    }

    [Test]
    public void TheRule_SeesUsingsAndQualifiedNames_ButNotCommentsOrStrings()
    {
        const string code = """
            using OrderBookIngestor.Storage;
            // Hosting.Something in a comment
            var s = "Cli.Thing in a string";
            var x = new Pipeline.GapLedger();
            """;
        Assert.That(References(code).Order(), Is.EqualTo(new[] { "Pipeline", "Storage" }));
    }

    private static IEnumerable<string> Violations()
    {
        var root = SourceRoot();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            var folder = relative.Split('/')[0];
            if (folder is "bin" or "obj" || !Allowed.TryGetValue(folder, out var allowed))
            {
                continue; // Program.cs at the top is the entry point and may see everything
            }

            foreach (var ns in References(File.ReadAllText(file)).Distinct())
            {
                if (ns != folder && !allowed.Contains(ns))
                {
                    yield return $"{relative} -> {ns}";
                }
            }
        }
    }

    private static IEnumerable<string> References(string code)
    {
        var stripped = CommentsAndStrings().Replace(code, " ");
        foreach (Match m in Qualified().Matches(stripped))
        {
            var ns = m.Groups["ns"].Value;
            if (Allowed.ContainsKey(ns))
            {
                yield return ns;
            }
        }
    }

    private static string SourceRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "OrderBookIngestor", "OrderBookIngestor.csproj");
            if (File.Exists(candidate))
            {
                return Path.GetDirectoryName(candidate)!;
            }
        }

        throw new InvalidOperationException("OrderBookIngestor/ not found above " + TestContext.CurrentContext.TestDirectory);
    }

    // Raw and verbatim strings, ordinary strings and chars, line and block comments.
    [GeneratedRegex(@"""""""[\s\S]*?""""""|@""(?:[^""]|"""")*""|""(?:\\.|[^""\\\n])*""|'(?:\\.|[^'\\\n])'|//[^\n]*|/\*[\s\S]*?\*/")]
    private static partial Regex CommentsAndStrings();

    // "OrderBookIngestor.X" anywhere (usings), or "X.Name" not preceded by an identifier or a dot.
    [GeneratedRegex(@"OrderBookIngestor\.(?<ns>[A-Z][A-Za-z]+)\b|(?<![\w.])(?<ns>[A-Z][A-Za-z]+)\.[A-Z]")]
    private static partial Regex Qualified();
}
