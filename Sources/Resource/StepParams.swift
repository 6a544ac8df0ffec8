import Foundation

/// A step's `params:`, checked from the params and the source alone, before anything is read,
/// pushed or cloned: the keys, which of them go together, and each value's type. `in` and
/// `out` take their params from here, and the pipeline tests check the pipelines in `ci/`
/// with the same functions, so those cannot drift from what the binaries accept. What a value
/// means (a file it names, a tag it makes) is checked where it is used.
extension In {
    /// A `get` step's `params:` (also a `put` step's `get_params:`, the implicit get).
    static func params(_ value: JSONValue?, source: Source) throws -> InputObject {
        let params = try InputObject(value, path: "params", keys: paramKeys)
        _ = try FetchOptions(params, source: source)
        if case .sourceKeyed = source.mode {
        } else if params.has("source") {
            throw params.invalid("source", "only used in source-keyed mode (source.git)")
        }
        _ = try params.bool("source")
        _ = try params.bool("attestations")
        return params
    }
}

extension Out {
    /// A `put` step's `params:`.
    static func params(_ value: JSONValue?, source: Source) throws -> InputObject {
        let params: InputObject
        if case .sourceKeyed = source.mode {
            params = try InputObject(value, path: "params", keys: sourceKeyedParamKeys)
            if let prune = try params.object("prune", keys: pruneKeys) {
                for key in ["image", "version_from", "additional_tags", "release", "promote", "bump_tag_file"]
                where params.has(key) {
                    throw params.invalid(key, "not used with prune, which only removes tags; use a put of its own")
                }
                _ = try pruneOptions(prune)
            }
            if try params.string("bump_tag_file") != nil {
                for key in ["image", "version_from", "additional_tags", "release", "promote"] where params.has(key) {
                    throw params.invalid(key, "not used with bump_tag_file, which only commits a new tag file value")
                }
            }
            if try params.object("promote", keys: promoteKeys, secrets: ["password"]) != nil {
                for key in ["image", "version_from", "additional_tags", "release"] where params.has(key) {
                    throw params.invalid(key, "not used with promote, which retags an image already in the registry")
                }
            }
            _ = try params.string("version_from")
            _ = try params.string("release")
        } else {
            params = try InputObject(value, path: "params", keys: paramKeys)
            if let promote = try params.object("promote", keys: promoteKeys, secrets: ["password"]) {
                for key in ["image", "version", "bump_aliases", "additional_tags"] where params.has(key) {
                    throw params.invalid(key, "not used with promote, which retags an image already in the registry")
                }
                if promote.has("if_missing") {
                    throw promote.invalid(
                        "if_missing",
                        "only in source-keyed mode (source.git), where a put that promotes nothing still returns a version"
                    )
                }
            }
            _ = try params.string("version")
            _ = try params.bool("bump_aliases")
            _ = try params.string("tag_prefix")
        }
        _ = try params.string("image")
        _ = try params.string("additional_tags")
        if let promote = try params.object("promote", keys: promoteKeys, secrets: ["password"]) {
            // In the order `promote` reads them, so the first fault is the one it would meet.
            _ = try promote.requiredString("from")
            _ = try promote.strings("to")
            guard promote.has("to") || promote.has("release") else {
                throw InputError("params.promote.to is required (or promote.release): the tags to add")
            }
            _ = try ifMissing(promote)
            _ = try promote.string("release")
            _ = try promote.string("repository")
        }
        return params
    }
}
