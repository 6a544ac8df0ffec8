import Foundation

/// What a pipeline may write for this resource type, checked the way `check`, `in` and
/// `out` parse it but without touching a registry or git: so the example pipelines in
/// `ci/` (and a team's own, before `fly set-pipeline`) cannot drift from what the binaries
/// accept. Each check throws the same one-line ``InputError`` the binary would print.
public enum PipelineUsage {
    /// A resource's `source:`.
    public static func source(_ json: Data) throws -> Source {
        try Source(JSONValue.parse(json))
    }

    /// A `get` step's `params:` (also a `put` step's `get_params:`, the implicit get).
    public static func getParams(_ json: Data, source: Source) throws {
        let params = try InputObject(JSONValue.parse(json), path: "params", keys: In.paramKeys)
        _ = try In.FetchOptions(params, source: source)
        _ = try params.bool("source")
        if case .sourceKeyed = source.mode {} else if params.has("source") {
            throw params.invalid("source", "only used in source-keyed mode (source.git)")
        }
    }

    /// A `put` step's `params:`.
    public static func putParams(_ json: Data, source: Source) throws {
        let value = try JSONValue.parse(json)
        let params: InputObject
        if case .sourceKeyed = source.mode {
            params = try InputObject(value, path: "params", keys: Out.sourceKeyedParamKeys)
            _ = try params.string("version_from")
            _ = try params.string("release")
            _ = try params.string("bump_tag_file")
            if let prune = try params.object("prune", keys: Out.pruneKeys) {
                _ = try prune.bool("deleted_branches")
                _ = try prune.bool("dry_run")
                _ = try prune.string("older_than")
                _ = try prune.object("cache", keys: Out.pruneCacheKeys, secrets: ["password"])
            }
        } else {
            params = try InputObject(value, path: "params", keys: Out.paramKeys)
            _ = try params.string("version")
            _ = try params.bool("bump_aliases")
            _ = try params.string("tag_prefix")
        }
        _ = try params.string("image")
        _ = try params.string("additional_tags")
        if let promote = try params.object("promote", keys: Out.promoteKeys, secrets: ["password"]) {
            _ = try promote.requiredString("from")
            _ = try promote.strings("to")
            _ = try promote.string("release")
            _ = try promote.string("repository")
            _ = try Out.ifMissing(promote)
            if case .sourceKeyed = source.mode {} else if promote.has("if_missing") {
                throw promote.invalid("if_missing", "only in source-keyed mode (source.git), where a put that promotes nothing still returns a version")
            }
            guard promote.has("to") || promote.has("release") else {
                throw InputError("params.promote.to is required (or promote.release): the tags to add")
            }
        }
        guard ["image", "promote", "bump_tag_file", "prune"].contains(where: params.has) else {
            throw InputError("params: a put needs image, promote, bump_tag_file or prune")
        }
    }
}
