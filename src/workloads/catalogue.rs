//! The preset catalogue: `assets/presets.toml` built in, plus the user's own presets file.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in catalogue, from the seed articles.
pub const BUILT_IN: &str = include_str!("../../assets/presets.toml");

/// One phase of a workload's memory curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// What happens in it.
    pub name: String,
    /// VRAM in use, MiB.
    pub mib: u64,
}

/// A measured (input size, peak) pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizePoint {
    /// Input size in pixels (the long edge / the workflow's size parameter).
    pub size: u32,
    /// Peak VRAM at that size, MiB.
    pub peak_mib: u64,
}

/// A recommended size range for one kind of subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeGuidance {
    /// "building", "portrait", …
    pub subject: String,
    /// Smallest recommended size.
    pub min: u32,
    /// Largest recommended size.
    pub max: u32,
    /// The safe default.
    pub default: u32,
}

/// How a workload's memory depends on its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    /// One peak for the run.
    Fixed {
        /// Peak VRAM, MiB.
        peak_mib: u64,
        /// The memory curve's phases, if known.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        phases: Vec<Phase>,
    },
    /// Peak depends on input size, roughly with image area.
    Sized {
        /// Measured points, any order.
        points: Vec<SizePoint>,
        /// Sizes are recommended in multiples of this.
        #[serde(default = "default_size_step")]
        size_step: u32,
        /// Recommended ranges per subject.
        #[serde(default)]
        guidance: Vec<SizeGuidance>,
    },
    /// Peak = base + per_item × batch.
    Batched {
        /// Fixed part (models), MiB.
        base_mib: u64,
        /// Per item in the batch, MiB.
        per_item_mib: u64,
        /// The batch the reference peak was taken at.
        reference_batch: u32,
        /// Largest batch worth using.
        max_batch: u32,
    },
}

fn default_size_step() -> u32 {
    64
}

/// One preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Stable identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Memory model.
    #[serde(flatten)]
    pub shape: Shape,
    /// Run time, seconds, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Settings the figure was taken with.
    #[serde(default)]
    pub settings: String,
    /// The GPU (and software) it was measured on.
    pub measured_on: String,
    /// Where the figure comes from.
    pub source: String,
    /// Lighter preset to suggest when this one does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// What to change, in the article's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_advice: Option<String>,
    /// The same words in Simplified Chinese (a `[workload.zh-CN]` table), where given.
    #[serde(default, rename = "zh-CN", skip_serializing_if = "Option::is_none")]
    pub zh_cn: Option<PresetText>,
}

/// A preset's words in another language; each one given replaces the English one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PresetText {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings the figure was taken with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// The GPU (and software) it was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_on: Option<String>,
    /// Where the figure comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_advice: Option<String>,
    /// The phases' names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<String>,
    /// The guidance subjects' names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// A preset's words in the language in force.
#[derive(Clone, Copy, Debug)]
pub struct Text<'a> {
    /// Display name.
    pub name: &'a str,
    /// Settings the figure was taken with.
    pub settings: &'a str,
    /// The GPU (and software) it was measured on.
    pub measured_on: &'a str,
    /// Where the figure comes from.
    pub source: &'a str,
    /// What to change.
    pub fallback_advice: Option<&'a str>,
    translated: Option<&'a PresetText>,
    workload: &'a Workload,
}

impl<'a> Text<'a> {
    /// The name of phase `i` (its English name is `english`).
    pub fn phase(&self, i: usize, english: &'a str) -> &'a str {
        self.translated
            .and_then(|t| t.phases.get(i))
            .map_or(english, String::as_str)
    }

    /// A guidance subject's name ("building" → "建筑").
    pub fn subject(&self, english: &'a str) -> &'a str {
        let Shape::Sized { guidance, .. } = &self.workload.shape else {
            return english;
        };
        guidance
            .iter()
            .position(|g| g.subject == english)
            .and_then(|i| self.translated.and_then(|t| t.subjects.get(i)))
            .map_or(english, String::as_str)
    }
}

impl Workload {
    /// The peak this preset is known by: the fixed peak, the largest measured size's peak, or
    /// the batch peak at the reference batch.
    pub fn reference_peak_mib(&self) -> u64 {
        match &self.shape {
            Shape::Fixed { peak_mib, .. } => *peak_mib,
            Shape::Sized { points, .. } => points.iter().map(|p| p.peak_mib).max().unwrap_or(0),
            Shape::Batched {
                base_mib,
                per_item_mib,
                reference_batch,
                ..
            } => base_mib.saturating_add(per_item_mib.saturating_mul(*reference_batch as u64)),
        }
    }

    /// True when `text` names this preset (id or name in any language, case-insensitive;
    /// agents send labels).
    pub fn matches(&self, text: &str) -> bool {
        let t = text.trim().to_lowercase();
        let translated = self.zh_cn.as_ref().and_then(|z| z.name.as_deref());
        !t.is_empty()
            && (self.id.to_lowercase() == t
                || self.name.to_lowercase() == t
                || translated.is_some_and(|n| n.to_lowercase() == t))
    }

    /// Its words in the language in force (English where no translation is given).
    pub fn text(&self) -> Text<'_> {
        let translated = match crate::i18n::language() {
            crate::i18n::Language::Chinese => self.zh_cn.as_ref(),
            crate::i18n::Language::English => None,
        };
        Text {
            name: translated
                .and_then(|t| t.name.as_deref())
                .unwrap_or(&self.name),
            settings: translated
                .and_then(|t| t.settings.as_deref())
                .unwrap_or(&self.settings),
            measured_on: translated
                .and_then(|t| t.measured_on.as_deref())
                .unwrap_or(&self.measured_on),
            source: translated
                .and_then(|t| t.source.as_deref())
                .unwrap_or(&self.source),
            fallback_advice: translated
                .and_then(|t| t.fallback_advice.as_deref())
                .or(self.fallback_advice.as_deref()),
            translated,
            workload: self,
        }
    }
}

/// A presets file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PresetFile {
    /// Its presets.
    #[serde(default)]
    pub workload: Vec<Workload>,
}

/// Presets one file may hold: a shared file is read by every part of the app, so its work
/// must stay bounded (the built-in catalogue has a dozen).
pub const MAX_PRESETS_PER_FILE: usize = 500;
/// Largest batch a batched preset may name.
pub const MAX_BATCH: u32 = 4_096;
/// Measured sizes, phases or subjects one preset may list.
pub const MAX_LIST: usize = 64;

impl Workload {
    /// Every text field made safe to show ([`crate::text::sanitize`]): a shared presets file
    /// is text from outside, read into the window and printed by `vramdeck advise`.
    fn sanitize(&mut self) {
        let clean = |s: &mut String| *s = crate::text::sanitized(s);
        clean(&mut self.id);
        clean(&mut self.name);
        clean(&mut self.settings);
        clean(&mut self.measured_on);
        clean(&mut self.source);
        self.fallback.iter_mut().for_each(clean);
        self.fallback_advice.iter_mut().for_each(clean);
        if let Some(t) = &mut self.zh_cn {
            for s in [
                &mut t.name,
                &mut t.settings,
                &mut t.measured_on,
                &mut t.source,
                &mut t.fallback_advice,
            ] {
                s.iter_mut().for_each(clean);
            }
            t.phases.iter_mut().for_each(clean);
            t.subjects.iter_mut().for_each(clean);
        }
        match &mut self.shape {
            Shape::Fixed { phases, .. } => phases.iter_mut().for_each(|p| clean(&mut p.name)),
            Shape::Sized { guidance, .. } => {
                guidance.iter_mut().for_each(|g| clean(&mut g.subject))
            }
            Shape::Batched { .. } => {}
        }
    }

    /// Why the preset asks for more work than any real one, if it does.
    fn too_big(&self) -> Option<String> {
        let long = match &self.shape {
            Shape::Fixed { phases, .. } => phases.len(),
            Shape::Sized {
                points, guidance, ..
            } => points.len().max(guidance.len()),
            Shape::Batched { max_batch, .. } if *max_batch > MAX_BATCH => {
                return Some(crate::t!(
                    "preset-batch-too-big",
                    id = self.id.clone(),
                    batch = max_batch.to_string(),
                    max = MAX_BATCH.to_string()
                ));
            }
            Shape::Batched { .. } => 0,
        };
        (long > MAX_LIST).then(|| {
            crate::t!(
                "preset-list-too-long",
                id = self.id.clone(),
                count = long.to_string(),
                max = MAX_LIST.to_string()
            )
        })
    }
}

/// Parses a presets file; the error names the line and what is wrong with it. Every text is
/// sanitised, and a file asking for unbounded work (thousands of presets, batches of
/// millions) is refused with a sentence.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Workload>, String> {
    let mut file: PresetFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        match line {
            Some(l) => crate::t!(
                "preset-file-line",
                origin = origin,
                line = l.to_string(),
                error = e.message().to_string()
            ),
            None => format!("{origin}: {}", e.message()),
        }
    })?;
    if file.workload.len() > MAX_PRESETS_PER_FILE {
        return Err(crate::t!(
            "preset-file-too-many",
            origin = origin,
            count = file.workload.len().to_string(),
            max = MAX_PRESETS_PER_FILE.to_string()
        ));
    }
    for w in &mut file.workload {
        w.sanitize();
        if let Shape::Sized { points, .. } = &w.shape
            && points.is_empty()
        {
            return Err(format!("{origin}: preset {} has no size points", w.id));
        }
        if let Some(why) = w.too_big() {
            return Err(format!("{origin}: {why}"));
        }
    }
    Ok(file.workload)
}

/// Serialises presets to a file's text.
pub fn to_toml(workloads: &[Workload]) -> String {
    toml::to_string_pretty(&PresetFile {
        workload: workloads.to_vec(),
    })
    .unwrap_or_default()
}

/// Where the user's own presets live: beside settings.toml.
pub fn user_presets_path() -> Option<PathBuf> {
    crate::settings::default_path().map(|p| p.with_file_name("presets.toml"))
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imported {
    /// Presets added or replaced.
    pub added: usize,
    /// Presets that had a built-in preset's id: (that id, the id they were given).
    pub renamed: Vec<(String, String)>,
    /// Names of the user's own presets that imported ones replaced.
    pub replaced: Vec<String>,
}

/// The catalogue in use, with anything that went wrong loading it.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    /// Built-in presets first, then the user's (a user preset with a built-in id replaces it).
    pub workloads: Vec<Workload>,
    /// Ids that came from the user's file.
    pub user_ids: Vec<String>,
    /// Problems, as sentences (a malformed user file is reported and ignored).
    pub warnings: Vec<String>,
}

impl Catalogue {
    /// The built-in catalogue merged with the user's presets file at `user_file`, if any.
    pub fn load(user_file: Option<&Path>) -> Self {
        let mut catalogue = Catalogue::default();
        match parse(BUILT_IN, "built-in presets") {
            Ok(w) => catalogue.workloads = w,
            Err(e) => catalogue.warnings.push(e),
        }
        if let Some(path) = user_file {
            use crate::persist::{CONFIG_FILE_LIMIT, ReadError, read_small};
            match read_small(path, CONFIG_FILE_LIMIT) {
                Ok(bytes) => {
                    match parse(
                        &String::from_utf8_lossy(&bytes),
                        &path.display().to_string(),
                    ) {
                        Ok(user) => catalogue.merge_user(user),
                        Err(e) => catalogue
                            .warnings
                            .push(crate::t!("presets-file-ignored", error = e)),
                    }
                }
                Err(ReadError::NotFound) => {}
                Err(e) => catalogue.warnings.push(crate::t!(
                    "cannot-read",
                    path = path.display().to_string(),
                    error = e.to_string()
                )),
            }
        }
        catalogue
    }

    /// Adds presets from a file someone shared. One whose id is a built-in preset's is added
    /// under a new id (never replacing the built-in one, whose figures were measured); one
    /// whose id is already among the user's replaces it. The report says which.
    pub fn import(&mut self, presets: Vec<Workload>) -> Imported {
        let built_in: Vec<String> = parse(BUILT_IN, "built-in presets")
            .map(|all| all.into_iter().map(|w| w.id).collect())
            .unwrap_or_default();
        let mut report = Imported::default();
        let mut taken: std::collections::HashSet<String> =
            self.workloads.iter().map(|w| w.id.clone()).collect();
        let mut add = Vec::with_capacity(presets.len());
        for mut w in presets {
            if built_in.contains(&w.id) {
                let mut n = 1;
                let new_id = loop {
                    let candidate = match n {
                        1 => format!("{}-imported", w.id),
                        n => format!("{}-imported-{n}", w.id),
                    };
                    if !taken.contains(&candidate) {
                        break candidate;
                    }
                    n += 1;
                };
                report.renamed.push((w.id.clone(), new_id.clone()));
                w.name = format!("{} (imported)", w.name);
                w.id = new_id;
            } else if self.user_ids.contains(&w.id) {
                report.replaced.push(w.name.clone());
            }
            taken.insert(w.id.clone());
            add.push(w);
        }
        report.added = add.len();
        self.merge_user(add);
        report
    }

    /// Adds or replaces user presets.
    pub fn merge_user(&mut self, user: Vec<Workload>) {
        for w in user {
            if !self.user_ids.contains(&w.id) {
                self.user_ids.push(w.id.clone());
            }
            match self.workloads.iter_mut().find(|x| x.id == w.id) {
                Some(existing) => *existing = w,
                None => self.workloads.push(w),
            }
        }
    }

    /// Removes a user preset; a built-in one it had replaced comes back.
    pub fn remove_user(&mut self, id: &str) {
        if !self.user_ids.iter().any(|u| u == id) {
            return;
        }
        self.user_ids.retain(|u| u != id);
        let built_in = parse(BUILT_IN, "built-in presets")
            .ok()
            .and_then(|all| all.into_iter().find(|w| w.id == id));
        match built_in {
            Some(original) => {
                if let Some(w) = self.workloads.iter_mut().find(|w| w.id == id) {
                    *w = original;
                }
            }
            None => self.workloads.retain(|w| w.id != id),
        }
    }

    /// The user's presets only (what gets saved and exported).
    pub fn user_workloads(&self) -> Vec<Workload> {
        self.workloads
            .iter()
            .filter(|w| self.user_ids.contains(&w.id))
            .cloned()
            .collect()
    }

    /// A preset by id.
    pub fn get(&self, id: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.id == id)
    }

    /// A preset named by `text` (id or name).
    pub fn find(&self, text: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.matches(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalogue_has_every_workload_from_the_seeds_with_its_source() {
        let c = Catalogue::load(None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        for id in [
            "wan21-t2v-1.3b-480p",
            "wan21-t2v-1.3b-720p",
            "wan21-t2v-14b-480p-quant",
            "wan21-t2v-14b-480p",
            "wan22-i2v-a14b",
            "ddcolor",
            "facefusion-fp16",
        ] {
            let w = c.get(id).unwrap_or_else(|| panic!("{id} missing"));
            // Sources a user can look up: the article, not an internal "seed" number.
            assert!(
                !w.measured_on.is_empty() && w.source.contains("article")
                    || w.source.contains("guide"),
                "{id}: {}",
                w.source
            );
            assert!(!w.source.contains("seed") && !w.measured_on.contains("5090"));
        }
        assert_eq!(
            c.get("wan21-t2v-14b-480p").unwrap().reference_peak_mib(),
            41_200
        );
        assert_eq!(
            c.get("facefusion-fp16").unwrap().reference_peak_mib(),
            7_987
        );
        let Shape::Fixed { phases, .. } = &c.get("wan22-i2v-a14b").unwrap().shape else {
            panic!()
        };
        assert_eq!(phases.len(), 5);
        // Every fallback points at a preset that exists.
        for w in &c.workloads {
            if let Some(f) = &w.fallback {
                assert!(c.get(f).is_some(), "{} falls back to missing {f}", w.id);
            }
        }
    }

    #[test]
    fn a_malformed_user_file_is_reported_by_line_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("presets.toml");
        std::fs::write(
            &path,
            "[[workload]]\nid = \"mine\"\nname = \"Mine\"\nkind = \"fixed\"\npeak_mib = \"lots\"\n",
        )
        .unwrap();
        let c = Catalogue::load(Some(&path));
        assert_eq!(c.workloads.len(), Catalogue::load(None).workloads.len());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("line "), "{}", c.warnings[0]);
        assert!(c.warnings[0].starts_with("Your presets file was ignored"));
    }

    #[test]
    fn user_presets_add_to_and_override_the_catalogue() {
        let mut c = Catalogue::load(None);
        let mut mine = c.get("ddcolor").unwrap().clone();
        mine.name = "DDColor (my card)".into();
        let extra = Workload {
            id: "sdxl-1024".into(),
            name: "SDXL 1024".into(),
            shape: Shape::Fixed {
                peak_mib: 9_000,
                phases: vec![],
            },
            seconds: None,
            settings: String::new(),
            measured_on: "my RTX 4070".into(),
            source: "measured by me".into(),
            fallback: None,
            fallback_advice: None,
            zh_cn: None,
        };
        let before = c.workloads.len();
        c.merge_user(vec![mine, extra.clone()]);
        assert_eq!(c.workloads.len(), before + 1);
        assert_eq!(c.get("ddcolor").unwrap().name, "DDColor (my card)");
        // A round trip through a file keeps user presets exactly.
        let text = to_toml(&c.user_workloads());
        assert_eq!(parse(&text, "x").unwrap(), c.user_workloads());
        assert!(c.find("sdxl 1024").is_some());
        // Removing brings the built-in DDColor back and drops the extra preset.
        c.remove_user("ddcolor");
        c.remove_user("sdxl-1024");
        assert_eq!(c.get("ddcolor").unwrap().name, "DDColor (ComfyUI)");
        assert!(c.get("sdxl-1024").is_none());
        assert_eq!(c.workloads.len(), before);
    }
}
