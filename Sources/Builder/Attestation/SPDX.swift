import Foundation

/// An [SPDX 2.3](https://spdx.github.io/spdx-spec/v2.3/) document in its JSON form: the
/// fields build-task fills.
struct SPDXDocument: Encodable, Sendable {
    static let predicateType = "https://spdx.dev/Document"

    struct CreationInfo: Encodable, Sendable {
        var created: String
        var creators: [String]
    }

    struct Checksum: Encodable, Sendable, Equatable {
        var algorithm: String
        var checksumValue: String
    }

    struct ExternalRef: Encodable, Sendable, Equatable {
        var referenceCategory: String
        var referenceType: String
        var referenceLocator: String
    }

    struct Annotation: Encodable, Sendable, Equatable {
        var annotationDate: String
        var annotationType: String
        var annotator: String
        var comment: String
    }

    struct Package: Encodable, Sendable {
        var SPDXID: String
        var name: String
        var versionInfo: String?
        var downloadLocation: String = "NOASSERTION"
        var filesAnalyzed: Bool = false
        var primaryPackagePurpose: String?
        var sourceInfo: String?
        var checksums: [Checksum]?
        var externalRefs: [ExternalRef]?
        var annotations: [Annotation]?
        var comment: String?
    }

    struct File: Encodable, Sendable {
        var SPDXID: String
        var fileName: String
        var checksums: [Checksum]
        var comment: String?
    }

    struct Relationship: Encodable, Sendable, Equatable {
        var spdxElementId: String
        var relationshipType: String
        var relatedSpdxElement: String
    }

    var spdxVersion = "SPDX-2.3"
    var dataLicense = "CC0-1.0"
    var SPDXID = "SPDXRef-DOCUMENT"
    var name: String
    var documentNamespace: String
    var creationInfo: CreationInfo
    var comment: String?
    var packages: [Package]
    var files: [File]
    var relationships: [Relationship]

    /// An SPDX identifier's `idstring` (`[A-Za-z0-9.-]+`) made of `text`.
    static func identifier(_ text: String) -> String {
        "SPDXRef-"
            + String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "-" })
    }
}

/// A [package URL](https://github.com/package-url/purl-spec) component, percent-encoded.
func purlEncoded(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics.intersection(
        CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
    allowed.insert(charactersIn: ".-_~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
