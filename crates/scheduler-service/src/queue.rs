//! The queue of plans ready to lease: newest or oldest day first, optionally taking
//! turns between tenants so one giant tenant does not starve the others.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Order in which days are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueOrder {
    /// Newest day first (Cortex's order: recent data is queried most).
    NewestFirst,
    /// Oldest day first.
    OldestFirst,
}

type Key = (i64, String);

/// Plans ready to lease.
#[derive(Debug)]
pub struct Queue {
    order: QueueOrder,
    fair: bool,
    global: BTreeSet<Key>,
    per_tenant: BTreeMap<String, BTreeSet<Key>>,
    rotation: VecDeque<String>,
    len: usize,
}

impl Queue {
    /// An empty queue; `fair` takes turns between tenants.
    pub fn new(order: QueueOrder, fair: bool) -> Self {
        Self {
            order,
            fair,
            global: BTreeSet::new(),
            per_tenant: BTreeMap::new(),
            rotation: VecDeque::new(),
            len: 0,
        }
    }

    fn key(&self, day: i32, base: &str) -> Key {
        let day = i64::from(day);
        let k = match self.order {
            QueueOrder::NewestFirst => -day,
            QueueOrder::OldestFirst => day,
        };
        (k, base.to_owned())
    }

    /// Adds a plan (no-op when already queued).
    pub fn insert(&mut self, tenant: &str, day: i32, base: &str) {
        let key = self.key(day, base);
        let added = if self.fair {
            let set = self.per_tenant.entry(tenant.to_owned()).or_default();
            if set.is_empty() {
                self.rotation.push_back(tenant.to_owned());
            }
            set.insert(key)
        } else {
            self.global.insert(key)
        };
        self.len += usize::from(added);
    }

    /// Removes a plan (no-op when absent).
    pub fn remove(&mut self, tenant: &str, day: i32, base: &str) {
        let key = self.key(day, base);
        let removed = if self.fair {
            let Some(set) = self.per_tenant.get_mut(tenant) else {
                return;
            };
            let removed = set.remove(&key);
            if set.is_empty() {
                self.per_tenant.remove(tenant);
                self.rotation.retain(|t| t != tenant);
            }
            removed
        } else {
            self.global.remove(&key)
        };
        self.len -= usize::from(removed);
    }

    /// Takes the next plan's base.
    pub fn pop(&mut self) -> Option<String> {
        let base = if self.fair {
            let tenant = self.rotation.pop_front()?;
            let set = self.per_tenant.get_mut(&tenant)?;
            let (_, base) = set.pop_first()?;
            if set.is_empty() {
                self.per_tenant.remove(&tenant);
            } else {
                self.rotation.push_back(tenant);
            }
            base
        } else {
            self.global.pop_first()?.1
        };
        self.len -= 1;
        Some(base)
    }

    /// Queued plans.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Oldest and newest queued day.
    pub fn day_range(&self) -> Option<(i32, i32)> {
        let day = |k: &Key| match self.order {
            QueueOrder::NewestFirst => -k.0,
            QueueOrder::OldestFirst => k.0,
        } as i32;
        let mut range: Option<(i32, i32)> = None;
        let mut see = |d: i32| {
            range = Some(range.map_or((d, d), |(lo, hi)| (lo.min(d), hi.max(d))));
        };
        if self.fair {
            for set in self.per_tenant.values() {
                if let Some(k) = set.first() {
                    see(day(k));
                }
                if let Some(k) = set.last() {
                    see(day(k));
                }
            }
        } else {
            if let Some(k) = self.global.first() {
                see(day(k));
            }
            if let Some(k) = self.global.last() {
                see(day(k));
            }
        }
        range
    }

    /// The first `n` plans in hand-out order (for the status page; fair queues list
    /// each tenant's head in turn).
    pub fn peek(&self, n: usize) -> Vec<String> {
        if !self.fair {
            return self.global.iter().take(n).map(|k| k.1.clone()).collect();
        }
        let mut iters: Vec<_> = self
            .rotation
            .iter()
            .filter_map(|t| self.per_tenant.get(t).map(|s| s.iter()))
            .collect();
        let mut out = Vec::new();
        while out.len() < n && !iters.is_empty() {
            iters.retain_mut(|it| match it.next() {
                Some(k) if out.len() < n => {
                    out.push(k.1.clone());
                    true
                }
                _ => false,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_day() {
        let mut q = Queue::new(QueueOrder::NewestFirst, false);
        q.insert("a", 10, "a/10");
        q.insert("a", 12, "a/12");
        q.insert("b", 11, "b/11");
        assert_eq!(q.day_range(), Some((10, 12)));
        assert_eq!(q.peek(2), ["a/12", "b/11"]);
        assert_eq!(q.pop().as_deref(), Some("a/12"));
        q.remove("b", 11, "b/11");
        assert_eq!(q.pop().as_deref(), Some("a/10"));
        assert!(q.pop().is_none() && q.is_empty());

        let mut q = Queue::new(QueueOrder::OldestFirst, false);
        q.insert("a", 10, "a/10");
        q.insert("a", 12, "a/12");
        assert_eq!(q.pop().as_deref(), Some("a/10"));
    }

    #[test]
    fn fair_queue_takes_turns() {
        let mut q = Queue::new(QueueOrder::NewestFirst, true);
        for d in 0..5 {
            q.insert("giant", 100 + d, &format!("giant/{}", 100 + d));
        }
        q.insert("small", 50, "small/50");
        q.insert("other", 60, "other/60");
        assert_eq!(q.len(), 7);
        let first: Vec<String> = (0..3).filter_map(|_| q.pop()).collect();
        assert_eq!(first, ["giant/104", "small/50", "other/60"]);
        assert_eq!(q.pop().as_deref(), Some("giant/103"));
        q.remove("giant", 102, "giant/102");
        assert_eq!(q.len(), 2);
        assert_eq!(q.day_range(), Some((100, 101)));
    }
}
