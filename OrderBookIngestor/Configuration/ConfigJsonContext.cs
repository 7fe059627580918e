using System.Text.Json.Serialization;

namespace OrderBookIngestor.Configuration;

/// <summary>The shape of appsettings.json: one "Ingestor" section.</summary>
public sealed class ConfigFile
{
    public IngestorOptions? Ingestor { get; set; }
}

/// <summary>Source-generated (trim-safe) JSON for configuration files.</summary>
[JsonSourceGenerationOptions(ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true,
    PropertyNameCaseInsensitive = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ConfigFile))]
[JsonSerializable(typeof(IngestorOptions))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
