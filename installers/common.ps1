# Helpers shared by install.ps1 and uninstall.ps1 (dot-sourced): the Windows side of common.sh.

$AppName = 'mfmjt-foley'
if (-not $SayTag) { $SayTag = 'install' }

function Say([string]$Message) { Write-Output "[$SayTag] $Message" }

# One clear line, then stop: every failure a user can fix ends here.
function Fail([string]$Message) {
    [Console]::Error.WriteLine("[$SayTag] error: $Message")
    exit 1
}

# Where platformdirs puts user data for "mfmjt-foley" on Windows (engine/paths.py reads it too).
function Get-UserDataDir {
    if ($env:MFMJT_DATA_DIR) { return $env:MFMJT_DATA_DIR }
    return Join-Path $env:LOCALAPPDATA $AppName
}

# Native commands write progress to stderr; under 'Stop' Windows PowerShell 5.1 turns the first
# stderr line into a terminating error. Every native call goes through here.
function Invoke-Native([string]$Exe, [string[]]$Arguments, [string]$Log) {
    $Previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        if ($Log) {
            & $Exe @Arguments 2>&1 | ForEach-Object { "$_" } | Out-File -FilePath $Log -Append -Encoding utf8
        } else {
            & $Exe @Arguments 2>&1 | Out-Null
        }
        return $LASTEXITCODE
    } catch {
        return 1  # the command could not be started at all
    } finally {
        $ErrorActionPreference = $Previous
    }
}

function Test-Python([string]$Exe) {
    if (-not (Test-Path $Exe)) { return $false }
    return (Invoke-Native -Exe $Exe -Arguments @('-c', 'pass')) -eq 0
}

# The interpreters the lock is resolved and tested for: CPython 3.10 to 3.12.
function Find-Python {
    $Check = 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)'
    $Candidates = @()
    if ($env:MFMJT_PYTHON) { $Candidates += , @($env:MFMJT_PYTHON) }
    else { $Candidates += , @('py', '-3.11'); $Candidates += , @('py', '-3.12'); $Candidates += , @('py', '-3.10'); $Candidates += , @('python') }
    foreach ($Candidate in $Candidates) {
        if (-not (Get-Command $Candidate[0] -ErrorAction SilentlyContinue)) { continue }
        $Arguments = @(@($Candidate | Select-Object -Skip 1) + @('-c', $Check))
        # the comma keeps a one-element candidate an array (PowerShell unrolls it otherwise)
        if ((Invoke-Native -Exe $Candidate[0] -Arguments $Arguments) -eq 0) { return , $Candidate }
    }
    if ($env:MFMJT_PYTHON) { Fail "MFMJT_PYTHON=$env:MFMJT_PYTHON is not a Python 3.10, 3.11 or 3.12; point it at one" }
    return $null
}

function Get-SpecHash([string]$Mode, [string]$Root, [string]$Lock) {
    $Parts = @($Mode, (Get-Content -Raw $Lock), (Get-Content -Raw (Join-Path $Root 'installers\install.ps1')),
        (Get-Content -Raw (Join-Path $Root 'installers\common.ps1')), (Get-Content -Raw (Join-Path $Root 'pyproject.toml')))
    if ($Mode -eq 'user') {
        foreach ($Package in 'engine', 'mfmjt_plugin', 'trainer', 'ui') {
            Get-ChildItem -Recurse -File (Join-Path $Root $Package) | Where-Object { $_.Extension -ne '.pyc' } |
                Sort-Object FullName | ForEach-Object { $Parts += (Get-FileHash $_.FullName -Algorithm SHA256).Hash }
        }
    }
    $Bytes = [Text.Encoding]::UTF8.GetBytes(($Parts -join "`n"))
    $Sha = [Security.Cryptography.SHA256]::Create()
    return ([BitConverter]::ToString($Sha.ComputeHash($Bytes)) -replace '-', '').ToLower()
}

function Assert-FreeSpace([string]$Path, [int]$NeedMB) {
    if ($env:MFMJT_INSTALL_MIN_FREE_MB) { $NeedMB = [int]$env:MFMJT_INSTALL_MIN_FREE_MB }
    $Drive = (Get-Item $Path).PSDrive
    $HaveMB = [int]($Drive.Free / 1MB)
    if ($HaveMB -lt $NeedMB) {
        Fail "only $HaveMB MB free at $Path, the install needs about $NeedMB MB; free space there (or set MFMJT_VENV and UV_CACHE_DIR to a larger disk) and run again"
    }
}

# One requirement of the lock with its hash lines (`name==version \` up to the last `--hash`).
function Get-LockEntry([string]$Name, [string]$Lock) {
    $On = $false
    foreach ($Line in Get-Content $Lock) {
        if ($Line -match "^$Name==") { $On = $true }
        if ($On) {
            $Text = ($Line -replace ' *#.*$', '')
            if ($Text) { $Text }
            if (-not $Line.TrimEnd().EndsWith('\')) { return }
        }
    }
}

# Why a step failed, in one line: a full disk and an unreachable index are the usual causes.
function Get-FailureReason([string]$What, [string]$Log) {
    $Text = if (Test-Path $Log) { Get-Content -Raw $Log } else { '' }
    if ($Text -match '(?i)no space left on device|os error 112|not enough space on the disk') {
        return "$What failed: the disk is full; free some space (or set MFMJT_VENV and UV_CACHE_DIR to a larger disk) and run again: the half-built environment will be rebuilt"
    }
    if ($Text -match '(?i)dns error|failed to lookup address|connection refused|error sending request|tcp connect error|NewConnectionError|getaddrinfo failed|from versions: none') {
        return "$What failed: cannot reach the package index; connect to the network (or set UV_DEFAULT_INDEX and PIP_INDEX_URL to a mirror) and run again"
    }
    $Last = ($Text -split "`n" | Where-Object { $_.Trim() } | Select-Object -Last 1)
    return "$What failed: $Last (full output in $Log)"
}

function Invoke-Logged([string]$What, [string]$Log, [string]$Exe, [string[]]$Arguments) {
    Add-Content -Path $Log -Encoding utf8 -Value "`n== $(Get-Date -Format s): $Exe $($Arguments -join ' ')"
    $Status = Invoke-Native -Exe $Exe -Arguments $Arguments -Log $Log
    if ($Status -ne 0) { Fail (Get-FailureReason -What $What -Log $Log) }
}

# Recorded before anything is added, so uninstall.ps1 removes exactly what the install added.
function Write-Manifest([string]$Venv, [string]$BinDir, [string]$Data) {
    $Manifest = Join-Path $Data 'install-manifest.txt'
    $Created = @()
    if (Test-Path $Manifest) { $Created = @(Get-Content $Manifest | Where-Object { $_ -like 'created-folder *' }) }
    foreach ($Dir in $Data, $BinDir) {
        if (-not (Test-Path $Dir)) { $Created += "created-folder $Dir"; New-Item -ItemType Directory -Force -Path $Dir | Out-Null }
    }
    $UserPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    $PathEntry = if (($UserPath -split ';') -contains $BinDir -and -not (Test-Path $Manifest)) { @() } else { @("path-entry $BinDir") }
    $Lines = @('# Added by installers\install.ps1 -User; installers\uninstall.ps1 removes exactly these.',
        "environment $Venv", "log $($Venv.TrimEnd('\'))-install.log", "launcher $BinDir\mfmjt.cmd") + $PathEntry + $Created
    Set-Content -Path "$Manifest.tmp" -Value $Lines -Encoding utf8
    Move-Item -Force "$Manifest.tmp" $Manifest
}

function Set-Launcher([string]$Venv, [string]$BinDir) {
    $Launcher = Join-Path $BinDir 'mfmjt.cmd'
    Set-Content -Path $Launcher -Encoding ascii -Value "@`"$Venv\Scripts\mfmjt.exe`" %*"
    $UserPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    if (-not (($UserPath -split ';') -contains $BinDir)) {
        [Environment]::SetEnvironmentVariable('Path', (@($UserPath, $BinDir) | Where-Object { $_ }) -join ';', 'User')
        Say "added $BinDir to your PATH (open a new terminal to use ``mfmjt``)"
    }
}
