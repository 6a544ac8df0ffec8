import Foundation

/// An [in-toto Statement v1](https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md):
/// what a predicate is about (the subjects, by digest) and the predicate itself.
struct InTotoStatement<Predicate: Encodable & Sendable>: Encodable, Sendable {
    static var type: String { "https://in-toto.io/Statement/v1" }

    var subject: [StatementSubject]
    var predicateType: String
    var predicate: Predicate

    enum CodingKeys: String, CodingKey {
        case type = "_type"
        case subject, predicateType, predicate
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.type, forKey: .type)
        try container.encode(subject, forKey: .subject)
        try container.encode(predicateType, forKey: .predicateType)
        try container.encode(predicate, forKey: .predicate)
    }
}

/// What a statement is about: a name and its digests (`sha256` → hex).
struct StatementSubject: Encodable, Sendable, Equatable {
    var name: String
    var digest: [String: String]
}

/// An in-toto [ResourceDescriptor](https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md):
/// SLSA provenance's dependencies are these.
struct ResourceDescriptor: Encodable, Sendable, Equatable {
    var uri: String?
    var digest: [String: String]?
    var name: String?
    var annotations: [String: String]?
}

/// [SLSA Provenance v1](https://slsa.dev/spec/v1.0/provenance): how an image was built.
struct SLSAProvenance: Encodable, Sendable {
    static let predicateType = "https://slsa.dev/provenance/v1"

    struct BuildDefinition: Encodable, Sendable {
        var buildType: String
        var externalParameters: ExternalParameters
        var internalParameters: InternalParameters
        var resolvedDependencies: [ResourceDescriptor]
    }

    /// What the user controlled (`build-task`'s settings), secrets never.
    struct ExternalParameters: Encodable, Sendable, Equatable {
        /// The Dockerfile, relative to the context (absolute when outside it).
        var dockerfile: String
        var target: String?
        /// Build args by name; those whose name looks secret are in `redactedBuildArgs` instead.
        var buildArgs: [String: String]
        /// Names of build args recorded without their value.
        var redactedBuildArgs: [String]
        /// `IMAGE_ARG_<name>`: the base each names (its reference, else `image-arg:<name>`).
        var imageArgs: [String: String]
        var platforms: [String]
        var labels: [String: String]
    }

    struct InternalParameters: Encodable, Sendable, Equatable {
        /// `buildah <version>`, `assembler`, or `reused` (SKIP_IF_PUBLISHED found the inputs published).
        var builder: String
        /// The inputs digest, also a resolved dependency.
        var inputs: String
        var reused: Bool
    }

    struct RunDetails: Encodable, Sendable {
        var builder: Builder
        var metadata: Metadata
    }

    struct Builder: Encodable, Sendable {
        var id: String
        var version: [String: String]
    }

    struct Metadata: Encodable, Sendable {
        var invocationId: String?
        var startedOn: String
        var finishedOn: String
    }

    var buildDefinition: BuildDefinition
    var runDetails: RunDetails
}
