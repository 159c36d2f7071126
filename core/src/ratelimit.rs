//! A token bucket: `capacity` tokens, refilled continuously at `per_sec`. Time is
//! passed in (milliseconds), so the bucket is deterministic and testable.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub capacity: f64,
    pub per_sec: f64,
}

impl TokenBucket {
    pub fn full(rate: Rate, now_ms: u64) -> Self {
        Self {
            tokens: rate.capacity,
            last_ms: now_ms,
        }
    }

    /// Takes one token, or says how many milliseconds until one is available.
    pub fn try_take(&mut self, rate: Rate, now_ms: u64) -> Result<(), u64> {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.capacity);
        self.last_ms = self.last_ms.max(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate.per_sec) * 1000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEN: Rate = Rate {
        capacity: 10.0,
        per_sec: 10.0,
    };

    #[test]
    fn burst_then_refill() {
        let mut b = TokenBucket::full(TEN, 0);
        for _ in 0..10 {
            assert!(b.try_take(TEN, 0).is_ok());
        }
        assert_eq!(b.try_take(TEN, 0), Err(100));
        assert_eq!(b.try_take(TEN, 50), Err(50));
        assert!(b.try_take(TEN, 100).is_ok());
    }

    #[test]
    fn clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::full(TEN, 1000);
        for _ in 0..10 {
            b.try_take(TEN, 1000).unwrap();
        }
        assert!(b.try_take(TEN, 0).is_err());
    }

    proptest! {
        /// Over any schedule, no more than capacity + rate × elapsed tokens are granted.
        #[test]
        fn never_exceeds_the_rate(steps in proptest::collection::vec(0u64..200, 1..300)) {
            let mut b = TokenBucket::full(TEN, 0);
            let mut now = 0;
            let mut granted = 0u64;
            for s in steps {
                now += s;
                if b.try_take(TEN, now).is_ok() { granted += 1; }
            }
            prop_assert!(granted as f64 <= TEN.capacity + TEN.per_sec * now as f64 / 1000.0 + 1e-9);
        }
    }
}
