; vramdeck's Windows installer, built on Linux by scripts/build-windows.sh with Debian's NSIS.
; Per-user: installs under %LOCALAPPDATA%\Programs\vramdeck without asking for administrator
; rights, adds a Start-menu entry, an uninstaller (Settings > Apps), and, when ticked, a start
; with Windows. `vramdeck-setup.exe /S` installs silently (the start with Windows stays off
; unless /AUTOSTART is given too).
;
; Defines from the build script: VERSION, SOURCE (the folder to install), OUTFILE, ICON.

; A 64-bit installer for a 64-bit program (it also runs where no 32-bit layer is installed).
Target amd64-unicode
!include "MUI2.nsh"
!include "FileFunc.nsh"

Name "vramdeck ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\vramdeck"
InstallDirRegKey HKCU "Software\vramdeck" "InstallDir"
RequestExecutionLevel user
SetCompressor /SOLID lzma

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\vramdeck"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\vramdeck.exe"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"

Section "vramdeck" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${SOURCE}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortCut "$SMPROGRAMS\vramdeck.lnk" "$INSTDIR\vramdeck.exe"
  WriteRegStr HKCU "Software\vramdeck" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "vramdeck"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "vramdeck"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\vramdeck.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section /o "Start with Windows" SecAutostart
  WriteRegStr HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "vramdeck" '"$INSTDIR\vramdeck.exe"'
SectionEnd

Function .onInit
  ; A silent install turns the start with Windows on only when asked: /AUTOSTART.
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/AUTOSTART" $1
  IfErrors +2 0
  SectionSetFlags ${SecAutostart} ${SF_SELECTED}
FunctionEnd

Section "Uninstall"
  Delete "$SMPROGRAMS\vramdeck.lnk"
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "vramdeck"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\vramdeck"
  RMDir /r "$INSTDIR"
SectionEnd
