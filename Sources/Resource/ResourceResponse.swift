/// What `in` and `out` print on stdout, as Concourse reads it: the version fetched or
/// put (an image's tag and digest, or a source-keyed image's commit), and metadata shown
/// as name/value pairs.
struct ResourceResponse<Version: Encodable>: Encodable {
    var version: Version
    var metadata: [[String: String]]
}
