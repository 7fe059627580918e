namespace OrderBookIngestor.Exchange;

/// <summary>Why a received frame was not turned into a row. Each reason is a metric label.</summary>
public enum RejectReason
{
    None = 0,
    MalformedJson,
    NotAnObject,
    MissingField,
    WrongType,
    InvalidNumber,
    NonPositivePrice,
    NegativeValue,
    UnknownSymbol,
    UnknownEvent,
    BinaryFrame,
    Oversize,

    /// <summary>A valid event for a stream this daemon does not record (not subscribed, or removed by a reload).</summary>
    Unsubscribed,
}

public static class RejectReasons
{
    public static readonly RejectReason[] All = Enum.GetValues<RejectReason>().Where(r => r != RejectReason.None).ToArray();

    public static string Label(this RejectReason reason) => reason switch
    {
        RejectReason.MalformedJson => "malformed_json",
        RejectReason.NotAnObject => "not_an_object",
        RejectReason.MissingField => "missing_field",
        RejectReason.WrongType => "wrong_type",
        RejectReason.InvalidNumber => "invalid_number",
        RejectReason.NonPositivePrice => "non_positive_price",
        RejectReason.NegativeValue => "negative_value",
        RejectReason.UnknownSymbol => "unknown_symbol",
        RejectReason.UnknownEvent => "unknown_event",
        RejectReason.BinaryFrame => "binary_frame",
        RejectReason.Oversize => "oversize",
        RejectReason.Unsubscribed => "unsubscribed",
        _ => "none",
    };
}
