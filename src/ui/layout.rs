//! How the window arranges its panels for its width: three columns on a wide screen, GPUs
//! beside tabs on a laptop, tabs alone on a narrow window. Nothing is ever laid out so narrow
//! that a chart or a table column disappears.

use egui::Ui;

/// Window width from which the GPUs, history and advice sit side by side, points.
pub const THREE_COLUMNS_FROM: f32 = 1_600.0;
/// Window width from which the GPU cards keep a column of their own, points.
pub const TWO_COLUMNS_FROM: f32 = 1_000.0;

/// The arrangement for a window width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// GPUs | history | what fits.
    ThreeColumns,
    /// GPUs | tabs of history and what fits.
    TwoColumns,
    /// Tabs of GPUs, history and what fits.
    OneColumn,
}

impl Layout {
    /// The arrangement for a window `width` points wide.
    pub fn for_width(width: f32) -> Self {
        if width >= THREE_COLUMNS_FROM {
            Layout::ThreeColumns
        } else if width >= TWO_COLUMNS_FROM {
            Layout::TwoColumns
        } else {
            Layout::OneColumn
        }
    }

    /// The tabs this arrangement needs (none with three columns).
    pub fn tabs(self) -> &'static [Tab] {
        match self {
            Layout::ThreeColumns => &[],
            Layout::TwoColumns => &[Tab::History, Tab::WhatFits],
            Layout::OneColumn => &[Tab::Gpus, Tab::History, Tab::WhatFits],
        }
    }

    /// The tab shown when `chosen` is not one of this arrangement's (GPUs on a wider window).
    pub fn shown(self, chosen: Tab) -> Tab {
        if self.tabs().contains(&chosen) {
            chosen
        } else {
            Tab::History
        }
    }
}

/// A tab of the centre area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    /// GPU cards, Free VRAM, alert rules.
    Gpus,
    /// Charts and processes.
    #[default]
    History,
    /// The advisor.
    WhatFits,
}

impl Tab {
    /// Its title.
    pub fn text(self) -> String {
        match self {
            Tab::Gpus => crate::t!("tab-gpus"),
            Tab::History => crate::t!("tab-history"),
            Tab::WhatFits => crate::t!("tab-what-fits"),
        }
    }
}

/// The tab row; changes `tab` when one is clicked.
pub fn tab_bar(ui: &mut Ui, tabs: &[Tab], tab: &mut Tab) {
    if tabs.is_empty() {
        return;
    }
    ui.horizontal(|ui| {
        for t in tabs {
            ui.selectable_value(tab, *t, egui::RichText::new(t.text()).strong());
        }
    });
    ui.separator();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_width_has_its_arrangement_and_tabs() {
        assert_eq!(Layout::for_width(1_920.0), Layout::ThreeColumns);
        assert_eq!(Layout::for_width(1_280.0), Layout::TwoColumns);
        assert_eq!(Layout::for_width(640.0), Layout::OneColumn);
        assert_eq!(Layout::TwoColumns.shown(Tab::Gpus), Tab::History);
        assert_eq!(Layout::OneColumn.shown(Tab::Gpus), Tab::Gpus);
    }
}
