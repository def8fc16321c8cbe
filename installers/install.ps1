<#
.SYNOPSIS
  Install MF-MJT Foley on Windows from the lock (installers\requirements.lock): the same steps as
  install.sh. Idempotent; quick when nothing changed.
.DESCRIPTION
  .\installers\install.ps1          the development environment .venv in this checkout (editable)
  .\installers\install.ps1 -User    an environment in %LOCALAPPDATA%\mfmjt-foley and the `mfmjt`
                                    launcher on the user PATH; undone exactly by uninstall.ps1
  MFMJT_PYTHON chooses the interpreter, MFMJT_VENV the environment's folder.
#>
[CmdletBinding()]
param([switch]$User)
$ErrorActionPreference = 'Stop'

$Root = Split-Path -Parent $PSScriptRoot
$Lock = Join-Path $Root 'installers\requirements.lock'
. (Join-Path $PSScriptRoot 'common.ps1')

if ($User) {
    $Data = Get-UserDataDir
    $Venv = if ($env:MFMJT_VENV) { $env:MFMJT_VENV } else { Join-Path $Data 'venv' }
    $BinDir = Join-Path $Data 'bin'
    Write-Manifest -Venv $Venv -BinDir $BinDir -Data $Data
} else {
    $Venv = if ($env:MFMJT_VENV) { $env:MFMJT_VENV } else { Join-Path $Root '.venv' }
}
$Python = Join-Path $Venv 'Scripts\python.exe'
$Uv = Join-Path $Venv 'Scripts\uv.exe'
$Stamp = Join-Path $Venv '.mfmjt-install-stamp'
$Unfinished = Join-Path $Venv '.mfmjt-install-unfinished'
$Log = "$($Venv.TrimEnd('\'))-install.log"

$Mode = if ($User) { 'user' } else { 'dev' }
$Want = Get-SpecHash -Mode $Mode -Root $Root -Lock $Lock
if ((Test-Path $Stamp) -and -not (Test-Path $Unfinished) -and
    ((Get-Content $Stamp -Raw).Trim() -eq $Want) -and (Test-Python $Python)) {
    Say "environment up to date ($Venv)"
    exit 0
}

# Only a folder this installer made is ever changed or removed (empty, or with our markers).
$IsOurs = (-not (Test-Path $Venv)) -or (-not (Get-ChildItem -Force $Venv)) -or (Test-Path $Stamp) -or (Test-Path $Unfinished)
if (-not $IsOurs) { Fail "$Venv exists and is not an environment this installer made; choose another folder (MFMJT_VENV) or move it away" }
if ((Test-Path $Venv) -and (Get-ChildItem -Force $Venv) -and ((Test-Path $Unfinished) -or -not (Test-Python $Python))) {
    Say "rebuilding ${Venv}: an earlier install did not finish"
    Remove-Item -Recurse -Force $Venv
}

if (-not (Test-Path $Python)) {
    $Base = Find-Python
    if (-not $Base) { Fail 'need Python 3.10, 3.11 or 3.12 (python.org installer or `winget install Python.Python.3.11`), or set MFMJT_PYTHON' }
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $Venv) | Out-Null
    Assert-FreeSpace -Path (Split-Path -Parent $Venv) -NeedMB 6000
    Say "creating $Venv"
    New-Item -ItemType Directory -Force -Path $Venv | Out-Null
    New-Item -ItemType File -Force -Path $Unfinished | Out-Null  # ours even if interrupted now
    Invoke-Logged -What 'creating the environment' -Log $Log -Exe $Base[0] -Arguments (@($Base | Select-Object -Skip 1) + @('-m', 'venv', $Venv))
}
New-Item -ItemType File -Force -Path $Unfinished | Out-Null

$UvRequirement = New-TemporaryFile
try {
    Get-LockEntry -Name 'uv' -Lock $Lock | Set-Content -Path $UvRequirement -Encoding ascii
    Invoke-Logged -What 'installing uv from the lock' -Log $Log -Exe $Python -Arguments @(
        '-m', 'pip', 'install', '--disable-pip-version-check', '--require-hashes', '--no-deps', '-r', $UvRequirement)
} finally { Remove-Item -Force $UvRequirement }

Say "installing the locked environment into $Venv"
Invoke-Logged -What 'installing the locked environment' -Log $Log -Exe $Uv -Arguments @(
    'pip', 'sync', '--require-hashes', '--compile-bytecode', '--python', $Python, $Lock)
$Editable = if ($User) { @($Root) } else { @('-e', $Root) }
Invoke-Logged -What 'installing mfmjt-foley' -Log $Log -Exe $Uv -Arguments (@(
    'pip', 'install', '--no-deps', '--no-build-isolation', '--reinstall-package', 'mfmjt-foley',
    '--python', $Python) + $Editable)
Invoke-Logged -What 'checking the torch set' -Log $Log -Exe $Python -Arguments @('-m', 'engine.compiled_extensions')

Remove-Item -Force $Unfinished
Set-Content -Path $Stamp -Value $Want -Encoding ascii
if ($User) {
    Set-Launcher -Venv $Venv -BinDir $BinDir
    Say "installed: $BinDir\mfmjt.cmd (installers\uninstall.ps1 removes it again)"
}
$Summary = & $Python -m engine.compiled_extensions --summary
Say "done: $Summary"
