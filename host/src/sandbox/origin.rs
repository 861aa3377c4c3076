//! Where a mapper came from, and what that allows: precompiled code or not, epoch checks or
//! not. The origin decides, never the bytes.

/// Whether a mapper's sandbox interrupts it at the end of its time budget, and so which
/// engine it is compiled for and runs on.
///
/// Epoch interruption, which stops a mapper that runs past its time budget, puts a check at
/// every function entry and loop back-edge: 15 % of the default mapper's time. The default
/// mapper is this host's own code, shipped with it; every loop in it is bounded by its input,
/// which the property tests and the fuzz targets exercise, and the Lambda timeout still bounds
/// it. So it is compiled without the checks. Every other mapper is compiled with them and
/// stopped with a clear error when it runs past its budget. Which applies follows from the
/// mapper's [`Origin`], never from what its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochChecks {
    /// No time budget inside the sandbox: only for the default mapper this binary carries.
    Off,
    /// Interrupted when it runs past its time budget.
    On,
}

/// Where a mapper came from. The origin alone decides whether precompiled native code may be
/// loaded for it ([`Origin::may_load_precompiled`]) and its [`EpochChecks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The component carried inside this binary.
    Embedded,
    /// The embedded component precompiled, shipped beside the executable under a name that
    /// carries the component's hash (the Lambda package): as trusted as the executable.
    Packaged,
    /// `MAPPER_URI`: whoever can write that object or file. `pinned` when `MAPPER_SHA256`
    /// matched these very bytes.
    Uri { uri: String, pinned: bool },
    /// A file named on the command line by whoever runs the command.
    Local(String),
}

impl Origin {
    /// Precompiled code is native code that runs as it is, past every check of the sandbox.
    /// It is loaded only where the bytes are as trusted as this executable: the package's own
    /// artifact, a file the operator names on the command line, or an object from
    /// `MAPPER_URI` whose SHA-256 the deployer pinned.
    pub fn may_load_precompiled(&self) -> bool {
        match self {
            Origin::Embedded => false,
            Origin::Packaged | Origin::Local(_) => true,
            Origin::Uri { pinned, .. } => *pinned,
        }
    }

    /// Only this binary's own default mapper runs without a time budget.
    pub fn epoch_checks(&self) -> EpochChecks {
        match self {
            Origin::Embedded | Origin::Packaged => EpochChecks::Off,
            Origin::Uri { .. } | Origin::Local(_) => EpochChecks::On,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded => f.write_str(crate::embedded::ORIGIN),
            Origin::Packaged => f.write_str("packaged"),
            Origin::Uri { uri, .. } => f.write_str(uri),
            Origin::Local(path) => f.write_str(path),
        }
    }
}
