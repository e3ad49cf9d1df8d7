import Sentiment from 'sentiment'

const analyzer = new Sentiment()

/**
 * Scores a headline or body with the AFINN-165 lexicon and squashes the raw sum into
 * [-1, 1] with tanh, so one strong word reads about ±0.6 and many saturate toward ±1.
 */
export function scoreText (text: string): number {
  const { score } = analyzer.analyze(text)
  const squashed = Math.tanh(score / 4)
  return Math.round(squashed * 1e6) / 1e6
}
