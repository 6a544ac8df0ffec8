import Foundation
import Testing

@testable import GitSource

/// Validated identifiers, configuration checks and the small pure pieces, without git.
@Suite struct ValueTests {
    @Test func commitIDsAreFortyLowercaseHexDigits() throws {
        let id = try GitCommitID("0123456789abcdef0123456789abcdef01234567")
        #expect(id.short == "0123456789ab")
        #expect(id.description == id.rawValue)
        for bad in [
            "", "0123456789ABCDEF0123456789abcdef01234567", "0123456789abcdef", String(repeating: "g", count: 40),
        ] {
            let error = try #require(throws: GitCommitID.ValidationError.self) { try GitCommitID(bad) }
            #expect(error.description.contains("invalid git commit \"\(bad)\""))
        }
        let json = try JSONEncoder().encode(id)
        #expect(String(decoding: json, as: UTF8.self) == "\"0123456789abcdef0123456789abcdef01234567\"")
        #expect(try JSONDecoder().decode(GitCommitID.self, from: json) == id)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(GitCommitID.self, from: Data("\"abc\"".utf8)) }
    }

    @Test(arguments: ["main", "feature/login", "release-1.2", "refs/heads/main", "a_b"])
    func validBranchNames(name: String) throws {
        let branch = try GitBranchName(name)
        #expect(branch.fullReference == "refs/heads/" + branch.rawValue)
        #expect(!branch.rawValue.hasPrefix("refs/"))
    }

    @Test(arguments: [
        "", "-x", "a..b", "a b", "x.lock", "a/.b", "a//b", "/a", "a/", "a.", "HEAD", "a~1", "a^", "a:b", "a?", "a*",
        "a[", "a\\b", "a@{1}",
    ])
    func invalidBranchNames(name: String) throws {
        let error = try #require(throws: GitBranchName.ValidationError.self) { try GitBranchName(name) }
        #expect(error.description.hasPrefix("invalid git branch"))
    }

    @Test func credentialsInAnHTTPSURLNeverReachGit() {
        let url = RemoteURL("https://robot:p%40ss@git.example.com/team/app.git")
        #expect(url.forGit == "https://git.example.com/team/app.git")
        #expect(url.username == "robot")
        #expect(url.password == "p@ss")
        let ssh = RemoteURL("ssh://git:secret@git.example.com:2222/team/app.git")
        #expect(ssh.forGit == "ssh://git@git.example.com:2222/team/app.git")
        #expect(RemoteURL("git@github.com:team/app.git").forGit == "git@github.com:team/app.git")
        #expect(RemoteURL("https://git.example.com/a.git").username == nil)
    }

    @Test func ignorePathsBecomeExclusionsThatKeepTheirMagic() {
        #expect(PathFilter.exclusion("docs/") == ":(exclude)docs/")
        #expect(PathFilter.exclusion(":(glob)**/*.md") == ":(exclude,glob)**/*.md")
        #expect(PathFilter.exclusion(":(exclude)x") == ":(exclude)x")
        #expect(PathFilter.exclusion(":/top/x") == ":(exclude,top)top/x")
        #expect(PathFilter.exclusion(":!x") == ":(exclude)x")
        #expect(PathFilter.exclusion(":/:x") == ":(exclude,top)x")
    }

    @Test func theTagFileJoinsThePathsUnlessAPathCoversIt() {
        let covered = PathFilter(
            paths: ["images/banana/"], ignorePaths: [], tagFile: "images/banana/VERSION", splitLiterals: true)
        #expect(covered.groups == [["images/banana/"]])
        let added = PathFilter(
            paths: ["base/"], ignorePaths: [], tagFile: "prebuilt-config/tags.yaml", splitLiterals: false)
        #expect(added.groups == [["base/", "prebuilt-config/tags.yaml"]])
        let split = PathFilter(
            paths: ["base/"], ignorePaths: [], tagFile: "prebuilt-config/tags.yaml", splitLiterals: true)
        #expect(split.groups == [["base/"], ["prebuilt-config/tags.yaml"]])
        let ignored = PathFilter(paths: [], ignorePaths: ["config/"], tagFile: "config/tag", splitLiterals: true)
        #expect(ignored.groups == [[".", ":(exclude)config/"], ["config/tag"]])
        let everything = PathFilter(paths: [], ignorePaths: [], tagFile: "VERSION", splitLiterals: true)
        #expect(everything.isUnfiltered)
        let magic = PathFilter(paths: ["a/", ":(glob)b/*"], ignorePaths: [], tagFile: "v[1]", splitLiterals: true)
        #expect(magic.groups == [["a/", ":(glob)b/*", ":(literal)v[1]"]])
        #expect(!PathFilter.literalCovers("images/ban", "images/banana/VERSION"))
    }

    @Test func messageStagesFoldCISkipIntoTheExcludePass() {
        func stages(_ adjust: (inout GitSourceConfiguration) -> Void) -> [HistoryWalker.MessageStage] {
            var configuration = GitSourceConfiguration(uri: "file:///x")
            adjust(&configuration)
            return HistoryWalker.messageStages(for: configuration)
        }
        let skip = HistoryWalker.ciSkipPatterns
        #expect(stages { _ in } == [.init(patterns: skip, invert: true, allMatch: false)])
        #expect(stages { $0.disableCISkip = true } == [])
        #expect(
            stages { $0.commitFilter = CommitFilter(include: ["a"], exclude: ["b"]) } == [
                .init(patterns: ["b"] + skip, invert: true, allMatch: false),
                .init(patterns: ["a"], invert: false, allMatch: false),
            ])
        #expect(
            stages { $0.commitFilter = CommitFilter(exclude: ["b", "c"], excludeAllMatch: true) } == [
                .init(patterns: ["b", "c"], invert: true, allMatch: true),
                .init(patterns: skip, invert: true, allMatch: false),
            ])
    }

    enum BadConfiguration: String, CaseIterable, Sendable {
        case emptyURI, zeroDepth, bothTagKeys, badTagRegex, badCommitFilter, passwordWithoutUser, notAKey, emptyPath,
            tagFileOutside, keyOnPlainFile, emptyKeyPart

        func apply(_ c: inout GitSourceConfiguration) {
            switch self {
            case .emptyURI: c.uri = " "
            case .zeroDepth: c.versionDepth = 0
            case .bothTagKeys:
                c.tagFilter = "v*"
                c.tagRegex = "v.*"
            case .badTagRegex: c.tagRegex = "v("
            case .badCommitFilter: c.commitFilter = CommitFilter(include: ["a\\{1"])
            case .passwordWithoutUser: c.password = "hunter22"
            case .notAKey: c.privateKey = "hunter22-not-a-key"
            case .emptyPath: c.paths = ["ok", ""]
            case .tagFileOutside: c.tagFile = TagFileSpec(path: "../x")
            case .keyOnPlainFile: c.tagFile = TagFileSpec(path: "VERSION", key: "a.b")
            case .emptyKeyPart: c.tagFile = TagFileSpec(path: "t.yaml", key: "a..b")
            }
        }

        var expected: String {
            switch self {
            case .emptyURI: "git.uri is empty"
            case .zeroDepth: "git.version_depth is 0"
            case .bothTagKeys: "both set"
            case .badTagRegex: "git.tag_regex: invalid regular expression \"v(\""
            case .badCommitFilter: "git.commit_filter.include: invalid regular expression"
            case .passwordWithoutUser: "git.password is set without git.username"
            case .notAKey: "not a PEM or OpenSSH private key"
            case .emptyPath: "git.paths entry \"\""
            case .tagFileOutside: "must stay inside the repository"
            case .keyOnPlainFile: "only .yaml, .yml and .json files have keys"
            case .emptyKeyPart: "not a dotted key"
            }
        }
    }

    @Test(arguments: BadConfiguration.allCases)
    func invalidConfigurationsAreNamed(bad: BadConfiguration) throws {
        let expected = bad.expected
        var configuration = GitSourceConfiguration(uri: "https://git.example.com/a.git")
        bad.apply(&configuration)
        let error = try #require(throws: GitSourceError.self) { try configuration.validate() }
        #expect(error.kind == .invalidConfiguration)
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(!error.message.contains("hunter22"))
    }
}
