<#
.SYNOPSIS
  Undo `installers\install.ps1 -User` exactly, as its manifest lists it: the launcher, the PATH
  entry, the environment, its log and the folders it created (only while empty). Imported weights
  and settings stay.
#>
[CmdletBinding()]
param([switch]$DryRun)
$ErrorActionPreference = 'Stop'
$SayTag = 'uninstall'
. (Join-Path $PSScriptRoot 'common.ps1')

$Data = Get-UserDataDir
$Manifest = Join-Path $Data 'install-manifest.txt'
if (-not (Test-Path $Manifest)) { Say "nothing to uninstall: no user install recorded at $Manifest"; exit 0 }
$Lines = Get-Content $Manifest | Where-Object { $_ -and -not $_.StartsWith('#') }
$Environment = ($Lines | Where-Object { $_ -like 'environment *' } | Select-Object -First 1).Substring(12)

function Remove-Path([string]$Path) {
    if ($DryRun) { Say "would remove $Path" } else { Remove-Item -Recurse -Force $Path; Say "removed $Path" }
}

foreach ($Line in $Lines) {
    $Kind, $Path = $Line -split ' ', 2
    switch ($Kind) {
        'launcher' {
            if ((Test-Path $Path) -and ((Get-Content -Raw $Path) -like "*$Environment\Scripts\mfmjt.exe*")) { Remove-Path $Path }
            elseif (Test-Path $Path) { Say "leaving ${Path}: it is not our launcher any more" }
        }
        'environment' {
            if ((Test-Path "$Path\pyvenv.cfg") -and ((Test-Path "$Path\.mfmjt-install-stamp") -or (Test-Path "$Path\.mfmjt-install-unfinished"))) { Remove-Path $Path }
            elseif (Test-Path $Path) { Say "leaving ${Path}: it is not an environment this installer made" }
        }
        'log' { if (Test-Path $Path) { Remove-Path $Path } }
        'path-entry' {
            if ($DryRun) { Say "would remove $Path from your PATH"; continue }
            $UserPath = [Environment]::GetEnvironmentVariable('Path', 'User')
            $Kept = ($UserPath -split ';' | Where-Object { $_ -and $_ -ne $Path }) -join ';'
            [Environment]::SetEnvironmentVariable('Path', $Kept, 'User')
            Say "removed $Path from your PATH"
        }
    }
}
if ($DryRun) { exit 0 }
Remove-Item -Force $Manifest
Say "removed $Manifest"
# Folders the install created go only if nothing else lives in them now (deepest first).
foreach ($Line in ($Lines | Where-Object { $_ -like 'created-folder *' } | Sort-Object -Descending)) {
    $Path = $Line.Substring(15)
    if ((Test-Path $Path) -and -not (Get-ChildItem -Force $Path)) { Remove-Item -Force $Path }
    elseif (Test-Path $Path) { Say "kept ${Path}: it holds other files (your data)" }
}
