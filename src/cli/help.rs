//! `--help` in the user's language: the command tree clap builds from the doc comments (the
//! English), with every text looked up in the catalogue when another language is in force
//! (`cli-about-<command>`, `cli-arg-<command>-<argument>`), and clap's own headings replaced.

use crate::i18n::{self, Language};
use clap::{Arg, ArgAction, Command};

fn lookup(id: &str) -> Option<String> {
    let text = i18n::lookup(id, &[]);
    (text != id).then_some(text)
}

/// The language asked for on the command line (`--lang zh-CN`, `--lang=en`), read before clap
/// parses, so that its help and messages are already in that language.
pub fn language_argument(args: &[String]) -> Option<Language> {
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        let value = match a.strip_prefix("--lang") {
            Some("") => iter.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(v) = value {
            return Language::from_locale(v);
        }
    }
    None
}

/// `command` with its texts in the language in force (unchanged in English).
pub fn localize(command: Command) -> Command {
    if i18n::language() == Language::English {
        return command;
    }
    localize_one(command, "vramdeck")
}

fn localize_one(mut command: Command, path: &str) -> Command {
    if let Some(about) = lookup(&format!("cli-about-{path}")) {
        command = command.about(about.clone()).long_about(about);
    }
    if path == "vramdeck" {
        if let Some(after) = lookup("cli-after-help") {
            command = command.after_help(after);
        }
        if let (Some(about), Some(note)) = (lookup("cli-about-vramdeck"), lookup("cli-window-note"))
        {
            command = command.long_about(format!("{about}\n\n{note}"));
        }
    }
    let ids: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let key = format!("cli-arg-{path}-{id}").replace('_', "-");
        if let Some(help) = lookup(&key) {
            command = command.mut_arg(id.as_str(), |a| a.help(help.clone()).long_help(help));
        }
    }
    let options = lookup("cli-heading-options").unwrap_or_default();
    let arguments = lookup("cli-heading-arguments").unwrap_or_default();
    let usage = lookup("cli-heading-usage").unwrap_or_default();
    command = command
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help(lookup("cli-help").unwrap_or_default()),
        )
        .subcommand_help_heading(lookup("cli-heading-commands").unwrap_or_default())
        .help_template(format!(
            "{{before-help}}{{about-with-newline}}\n{usage} {{usage}}\n\n{arguments}:\n\
             {{positionals}}\n\n{options}:\n{{options}}{{subcommands}}{{after-help}}"
        ));
    if path == "vramdeck" {
        command = command.arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help(lookup("cli-version").unwrap_or_default()),
        );
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name.as_str(), |s| localize_one(s, &name));
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_language_argument_is_found_before_parsing() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            language_argument(&args(&["vramdeck", "--lang", "zh-CN", "advise"])),
            Some(Language::Chinese)
        );
        assert_eq!(
            language_argument(&args(&["vramdeck", "advise", "--lang=en"])),
            Some(Language::English)
        );
        assert_eq!(language_argument(&args(&["vramdeck", "advise"])), None);
    }

    #[test]
    fn every_command_and_visible_argument_has_its_chinese_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let about = format!("cli-about-{path}");
            if i18n::lookup_in(Language::Chinese, &about, &[]) == about {
                missing.push(about);
            }
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let key = format!("cli-arg-{path}-{}", a.get_id()).replace('_', "-");
                if i18n::lookup_in(Language::Chinese, &key, &[]) == key {
                    missing.push(key);
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, s.get_name(), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&crate::cli::Cli::command(), "vramdeck", &mut missing);
        assert!(missing.is_empty(), "{missing:?}");
    }
}
