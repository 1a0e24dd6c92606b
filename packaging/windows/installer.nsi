; vramdeck's Windows installer, built on Linux by scripts/build-windows.sh with Debian's NSIS.
; Per-user: installs under %LOCALAPPDATA%\Programs\vramdeck without asking for administrator
; rights, adds a Start-menu entry, an uninstaller (Settings > Apps), and, when ticked, a start
; with Windows (in the tray: --hidden). `vramdeck-setup.exe /S` installs silently (the start
; with Windows stays off unless /AUTOSTART is given too).
;
; It never deletes a file it did not install: a chosen folder that already holds other files
; gets a "vramdeck" folder of its own inside it, and the uninstaller deletes the files of the
; list the build wrote (FILES_LIST), then only folders left empty. While vramdeck runs (its
; "vramdeck-running" mutex exists) neither goes on: the user is told to quit it first (a silent
; run stops with exit code 2).
;
; Defines from the build script: VERSION, SOURCE (the folder to install), OUTFILE, ICON,
; FILES_LIST (an .nsh of Delete and RMDir lines for exactly the files of SOURCE).

; A 64-bit installer for a 64-bit program (it also runs where no 32-bit layer is installed).
Target amd64-unicode
!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

Name "vramdeck ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\vramdeck"
InstallDirRegKey HKCU "Software\vramdeck" "InstallDir"
RequestExecutionLevel user
SetCompressor /SOLID lzma

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\vramdeck"
; The mutex vramdeck holds while it runs (src/platform/window.rs); SYNCHRONIZE access.
!define RUNNING_MUTEX "vramdeck-running"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\vramdeck.exe"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"

LangString Running ${LANG_ENGLISH} "vramdeck is running. Quit it (right-click its icon in the notification area, then Quit), then press Retry."
LangString Running ${LANG_SIMPCHINESE} "vramdeck 正在运行。请先退出它（右键单击通知区域中的图标，选择“退出”），然后点击“重试”。"

; Waits until vramdeck is not running, or gives up: the user cancels, or a silent run stops.
!macro WaitUntilQuit
  ${Do}
    System::Call 'kernel32::OpenMutexW(i 0x00100000, i 0, w "${RUNNING_MUTEX}") p .r0'
    ${If} $0 P= 0
      ${Break}
    ${EndIf}
    System::Call 'kernel32::CloseHandle(p r0)'
    ${If} ${Silent}
      SetErrorLevel 2
      Quit
    ${EndIf}
    MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "$(Running)" IDRETRY +2
    Quit
  ${Loop}
!macroend

; A chosen folder that holds files of someone else's gets a folder of its own inside it.
Function OwnFolder
  IfFileExists "$INSTDIR\vramdeck.exe" done
  IfFileExists "$INSTDIR\uninstall.exe" done
  FindFirst $0 $1 "$INSTDIR\*.*"
  ${DoWhile} $1 != ""
    ${If} $1 != "."
    ${AndIf} $1 != ".."
      FindClose $0
      StrCpy $INSTDIR "$INSTDIR\vramdeck"
      Goto done
    ${EndIf}
    FindNext $0 $1
  ${Loop}
  FindClose $0
  done:
FunctionEnd

Section "vramdeck" SecMain
  SectionIn RO
  !insertmacro WaitUntilQuit
  Call OwnFolder
  SetOutPath "$INSTDIR"
  File /r "${SOURCE}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortCut "$SMPROGRAMS\vramdeck.lnk" "$INSTDIR\vramdeck.exe"
  WriteRegStr HKCU "Software\vramdeck" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "vramdeck"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "vramdeck"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\vramdeck.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section /o "Start with Windows" SecAutostart
  ; Started by the session: straight into the tray, as vramdeck's own setting writes it.
  WriteRegStr HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "vramdeck" '"$INSTDIR\vramdeck.exe" --hidden'
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
  !insertmacro WaitUntilQuit
  ; Exactly the files this version installed, then the folders they leave empty: a file the
  ; user put beside them, and the folder holding it, stay.
  !include "${FILES_LIST}"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\vramdeck.lnk"
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "vramdeck"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\vramdeck"
SectionEnd
